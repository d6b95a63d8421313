"""Methods that inject peft tuner layers (LoRA, (IA)³): injection into a tower and merging for export."""

from __future__ import annotations

from torch import nn


def inject_peft(tower: nn.Module, peft_config, trainable_marker: str) -> None:
    """Inject ``peft_config``'s layers into ``tower``; only parameters whose name holds ``trainable_marker`` train."""
    from peft import inject_adapter_in_model  # heavy optional dependency (seconds to import): only these methods

    inject_adapter_in_model(peft_config, tower)
    for name, param in tower.named_parameters():
        param.requires_grad_(trainable_marker in name)


def merge_peft_layers(encoder: nn.Module) -> None:
    """Fold every peft tuner layer into its base ``nn.Linear`` and put the plain layer back in its place."""
    from peft.tuners.tuners_utils import BaseTunerLayer  # heavy optional dependency: only when exporting

    layers = [(name, m) for name, m in encoder.named_modules() if isinstance(m, BaseTunerLayer)]
    for name, layer in layers:
        layer.merge(safe_merge=True)
        parent_name, _, child = name.rpartition(".")
        parent = encoder.get_submodule(parent_name) if parent_name else encoder
        setattr(parent, child, layer.get_base_layer())
    leftovers = [n for n, m in encoder.named_modules() if isinstance(m, BaseTunerLayer)]
    if leftovers:
        raise RuntimeError(f"peft merge left tuner layers behind: {leftovers[:3]}")
