"""``bitfit``: only the biases are trained (Ben Zaken et al., ACL 2022)."""

from __future__ import annotations

from torch import nn

from mlilt.errors import TuningError
from mlilt.tuning.registry import TuningMethod, merge_nothing, register_method


def _apply(tower: nn.Module, config) -> None:
    biases = [m.bias for m in tower.modules() if isinstance(getattr(m, "bias", None), nn.Parameter)]
    if not biases:
        raise TuningError(f"bitfit: {type(tower).__name__} has no bias parameters")
    for bias in biases:
        bias.requires_grad_(True)


register_method(
    TuningMethod(
        "bitfit",
        _apply,
        "only the biases of the text tower are trained (BitFit).",
        towers=("text",),
        merge=merge_nothing,
    )
)
