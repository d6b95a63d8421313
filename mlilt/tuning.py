"""The LilT tuning methods: which parameters of a tower are trained, chosen by module type.

- ``frozen``: nothing (LiT's "locked" tower).
- ``layernorm``: every ``nn.LayerNorm`` (weight and bias).
- ``bitfit``: every bias (Ben Zaken et al., 2022).
- ``adapters``: Houlsby bottleneck adapters plus every LayerNorm (the LilT recipe).
- ``lora``: low-rank updates of the attention projections, injected with peft.
- ``full``: every parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from mlilt.adapters import inject_adapters
from mlilt.config import Method, TowerConfig

# Attention projections LoRA adapts, per family (peft selects modules by name suffix).
_LORA_TARGETS = ("query", "key", "value", "q_lin", "k_lin", "v_lin", "qkv")


def apply_method(tower: nn.Module, config: TowerConfig) -> nn.Module:
    """Freeze ``tower`` and make trainable what ``config.method`` says (injecting modules if needed)."""
    method = config.method
    tower.requires_grad_(False)
    if method == Method.FROZEN:
        pass
    elif method == Method.FULL:
        tower.requires_grad_(True)
    elif method == Method.LAYERNORM:
        _unfreeze_layernorms(tower)
    elif method == Method.BITFIT:
        found = False
        for module in tower.modules():
            bias = getattr(module, "bias", None)
            if isinstance(bias, nn.Parameter):
                bias.requires_grad_(True)
                found = True
        if not found:
            raise ValueError(f"bitfit: {type(tower).__name__} has no bias parameters")
    elif method == Method.ADAPTERS:
        inject_adapters(tower, config.reduction_factor)
        _unfreeze_layernorms(tower, required=False)
    elif method == Method.LORA:
        _inject_lora(tower, config)
    else:  # pragma: no cover - Method is an enum
        raise ValueError(f"unknown method {method}")
    return tower


def _unfreeze_layernorms(tower: nn.Module, required: bool = True) -> None:
    norms = [m for m in tower.modules() if isinstance(m, nn.LayerNorm)]
    if required and not norms:
        raise ValueError(
            f"layernorm: {type(tower).__name__} has no LayerNorm (a convolutional network uses BatchNorm); "
            "use method 'frozen' for this tower"
        )
    for norm in norms:
        norm.requires_grad_(True)


def _inject_lora(tower: nn.Module, config: TowerConfig) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    names = {name.rsplit(".", 1)[-1] for name, m in tower.named_modules() if isinstance(m, nn.Linear)}
    targets = sorted(names & set(_LORA_TARGETS))
    if not targets:
        raise ValueError(f"lora: no attention projections ({', '.join(_LORA_TARGETS)}) in {type(tower).__name__}")
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules=targets)
    inject_adapter_in_model(lora, tower)
    for name, param in tower.named_parameters():
        param.requires_grad_("lora_" in name)


@dataclass
class ParameterCount:
    """Trainable and total parameters of a module."""

    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / max(self.total, 1)

    def __str__(self) -> str:
        return f"{self.trainable:,} / {self.total:,} ({self.percent:.3f}%)"


def count_parameters(module: nn.Module) -> ParameterCount:
    """Count parameters once each (shared/tied tensors are not double counted)."""
    seen: set[int] = set()
    trainable = total = 0
    for param in module.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return ParameterCount(trainable, total)
