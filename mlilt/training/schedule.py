"""What each step uses: the learning rate (linear warm-up, then cosine decay) and the picture view.

Both are plain functions of the step, so a resumed run repeats them exactly.
"""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_learning_rates(optimizer: torch.optim.Optimizer, step: int, total: int, warmup: int) -> None:
    """Every group at its peak rate (``base_lr``) times the schedule's factor for ``step``."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * lr_factor(step, total, warmup)


def view_for_step(views: list[str], seed: int, step: int) -> str:
    """The picture view a step trains on: a deterministic draw from (seed, step), so resuming repeats it."""
    pick = torch.Generator().manual_seed(seed * 7919 + step)
    return views[torch.randint(len(views), (1,), generator=pick).item()]
