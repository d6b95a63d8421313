"""``adapters``: Houlsby bottleneck adapters plus every LayerNorm (the LilT recipe), injected at runtime.

LilT (Khan & Fu, ICLR 2023) follows Houlsby et al. (2019): in every transformer layer, one adapter after the
attention output projection and one after the feed-forward output projection (the places are in
:mod:`mlilt.tuning.sites`). An adapter is ``h + up(gelu(down(h)))`` with ``up`` initialised to zero, so the
injected model starts exactly as the pretrained one. Injection uses forward hooks on the upstream
``nn.Linear`` modules: no model code is copied, and the base state-dict keys stay unchanged (adapter weights
appear under ``<linear>.mlilt_adapter.*``).
"""

from __future__ import annotations

import torch
from torch import nn

from mlilt.errors import TuningError
from mlilt.tuning.layernorm import unfreeze_layernorms
from mlilt.tuning.registry import TuningMethod, register_method
from mlilt.tuning.sites import linear_at, transformer_layers

ADAPTER_ATTR = "mlilt_adapter"
NAME = "adapters"


class BottleneckAdapter(nn.Module):
    """``h + up(gelu(down(h)))``; ``up`` starts at zero so the adapter starts as the identity."""

    def __init__(self, hidden_size: int, reduction_factor: int):
        super().__init__()
        bottleneck = max(1, hidden_size // reduction_factor)
        self.down = nn.Linear(hidden_size, bottleneck)
        self.act = nn.GELU()
        self.up = nn.Linear(bottleneck, hidden_size)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))


def _run_adapter(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
    return getattr(module, ADAPTER_ATTR)(output)


def adapter_sites(model: nn.Module) -> list[nn.Linear]:
    """The output projections of every transformer layer, in module order (see :mod:`mlilt.tuning.sites`)."""
    sites = []
    for _, layer, family in transformer_layers(model, NAME):
        sites += [site for path in family.adapter_sites if (site := linear_at(layer, path)) is not None]
    return sites


def inject_adapters(model: nn.Module, reduction_factor: int) -> list[BottleneckAdapter]:
    """Add a bottleneck adapter after every layer's attention and feed-forward output projection.

    Returns:
        The adapters added (their parameters require grad).

    Raises:
        TuningError: The model has no recognised transformer layer (e.g. a convolutional network).
    """
    added = []
    for linear in adapter_sites(model):
        if hasattr(linear, ADAPTER_ATTR):
            raise TuningError("adapters were already injected into this model")
        adapter = BottleneckAdapter(linear.out_features, reduction_factor).to(linear.weight.device)
        linear.add_module(ADAPTER_ATTR, adapter)
        linear.register_forward_hook(_run_adapter)
        added.append(adapter)
    return added


def _apply(tower: nn.Module, config) -> None:
    inject_adapters(tower, config.reduction_factor)
    unfreeze_layernorms(tower, required=False)


register_method(
    TuningMethod(
        NAME,
        _apply,
        "Houlsby bottleneck adapters after each attention and feed-forward block, plus every LayerNorm "
        "(the LilT recipe).",
        not_mergeable="its bottleneck adapters (down -> GELU -> up, injected with forward hooks) have a "
        "nonlinearity, so they cannot be merged into the base weights",
    )
)
