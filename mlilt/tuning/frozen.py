"""``frozen``: nothing inside the tower is trained (LiT's "locked" tower; Zhai et al., 2022)."""

from __future__ import annotations

from torch import nn

from mlilt.tuning.registry import FROZEN, TuningMethod, merge_nothing, register_method


def _apply(tower: nn.Module, config) -> None:
    """Nothing to unfreeze: only the projection heads and the temperature train."""


register_method(
    TuningMethod(
        FROZEN,
        _apply,
        "no tower weights are trained, only the projection heads and the temperature (LiT).",
        merge=merge_nothing,
    )
)
