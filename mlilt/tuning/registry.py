"""The tuning methods, by name: what each trains inside a tower, whether it merges for export, what a card says.

A method is one file in this folder that calls :func:`register_method` (peft's ``register_peft_method``, in
small); ``mlilt/tuning/__init__.py`` imports each file once. Everything else (the command line's choices,
the study, the parameter table, export, model cards) asks this registry, so a new method needs no other edit.
Parameters are chosen by module type (``nn.LayerNorm``, biases), never by name substring.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from mlilt.errors import ConfigError

if TYPE_CHECKING:  # for annotations only: config imports this registry to check method names
    from mlilt.config import TowerConfig

FROZEN = "frozen"  # the method whose tower is never trained: its features are computed once and cached
TOWERS = ("text", "vision")


@dataclass(frozen=True)
class TuningMethod:
    """One way of choosing what is trained inside a tower.

    Attributes:
        name: What users pass to ``--method`` / ``--vision-method``.
        apply: Called with a tower whose parameters are all frozen and the tower's config; makes trainable
            what the method trains (injecting modules when it adds any).
        description: One sentence for ``--help`` and model cards.
        towers: The towers it may tune (``text``, ``vision``).
        merge: Folds the trained change into the plain weights of (a copy of) the text encoder, in place, so it
            exports as an ordinary transformers model. ``None``: it cannot be merged.
        not_mergeable: Why not, and what to do instead (shown by ``mlilt export``), when ``merge`` is ``None``.
    """

    name: str
    apply: Callable[[nn.Module, TowerConfig], None]
    description: str
    towers: tuple[str, ...] = TOWERS
    merge: Callable[[nn.Module], None] | None = None
    not_mergeable: str = ""

    def __post_init__(self):
        unknown = set(self.towers) - set(TOWERS)
        if unknown or not self.towers:
            raise ValueError(f"method {self.name!r}: towers must be among {TOWERS}, got {self.towers}")
        if self.merge is None and not self.not_mergeable:
            raise ValueError(f"method {self.name!r}: give a merge function or say why it cannot merge")


_METHODS: dict[str, TuningMethod] = {}


def register_method(method: TuningMethod) -> TuningMethod:
    """Make ``method`` available by name everywhere (command line, study, export, cards)."""
    if method.name in _METHODS:
        raise ValueError(f"a tuning method named {method.name!r} is already registered")
    _METHODS[method.name] = method
    return method


def method_names(tower: str | None = None) -> list[str]:
    """Registered methods in registration order; only those allowed on ``tower`` when given."""
    return [name for name, m in _METHODS.items() if tower is None or tower in m.towers]


def get_method(name: str, tower: str | None = None) -> TuningMethod:
    """The method registered as ``name`` (allowed on ``tower`` if given); a :class:`ConfigError` lists the choices."""
    allowed = method_names(tower)
    if name not in allowed:
        where = f" for the {tower} tower" if tower else ""
        close = difflib.get_close_matches(str(name), allowed, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown tuning method {name!r}{where}; choose from {', '.join(allowed)}.{hint}")
    return _METHODS[name]


def apply_method(tower: nn.Module, config: TowerConfig) -> nn.Module:
    """Freeze ``tower``, then make trainable what ``config.method`` says (injecting modules if needed)."""
    method = get_method(config.method)
    tower.requires_grad_(False)
    method.apply(tower, config)
    return tower


def merge_nothing(encoder: nn.Module) -> None:
    """The merge of methods that only change existing weights: the weights already are the merged ones."""
