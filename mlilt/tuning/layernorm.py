"""``layernorm``: only the LayerNorm weights and biases are trained (LilT's cheapest method, under 1 %)."""

from __future__ import annotations

from torch import nn

from mlilt.errors import TuningError
from mlilt.tuning.registry import TuningMethod, merge_nothing, register_method


def unfreeze_layernorms(tower: nn.Module, required: bool = True) -> None:
    """Make every ``nn.LayerNorm`` trainable (chosen by type); with ``required``, a tower without one is refused."""
    norms = [m for m in tower.modules() if isinstance(m, nn.LayerNorm)]
    if required and not norms:
        raise TuningError(
            f"layernorm: {type(tower).__name__} has no LayerNorm (a convolutional network uses BatchNorm); "
            "use method 'frozen' for this tower"
        )
    for norm in norms:
        norm.requires_grad_(True)


def _apply(tower: nn.Module, config) -> None:
    unfreeze_layernorms(tower)


register_method(
    TuningMethod(
        "layernorm",
        _apply,
        "only the LayerNorm weights and biases of the text tower are trained.",
        merge=merge_nothing,
    )
)
