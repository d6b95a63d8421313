"""Counting trainable and total parameters (shared or tied tensors counted once)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


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
