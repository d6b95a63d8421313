"""``full``: every weight of the tower is trained (the full fine-tuning baseline LilT compares against)."""

from __future__ import annotations

from torch import nn

from mlilt.tuning.registry import TuningMethod, merge_nothing, register_method


def _apply(tower: nn.Module, config) -> None:
    tower.requires_grad_(True)


register_method(
    TuningMethod(
        "full",
        _apply,
        "every weight of the text tower is trained (the full fine-tuning baseline).",
        towers=("text",),
        merge=merge_nothing,
    )
)
