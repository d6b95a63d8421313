"""Which code builds a tower from its name: a table of names and name prefixes -> builders.

A name in the table (or starting with a prefix that ends in ``:``) goes to its builder; any other text tower
name is a transformers model (Hub id or folder), any other vision tower name a timm architecture. A new
kind of tower is one :func:`register_text_tower` / :func:`register_vision_tower` call.
"""

from __future__ import annotations

from collections.abc import Callable

from mlilt.config import TowerConfig
from mlilt.constants import OFFLINE_TEXT, OFFLINE_VISION
from mlilt.towers.offline_e5 import E5_PREFIX, ensure_e5_small
from mlilt.towers.offline_effnet import load_efficientnet_lite0
from mlilt.towers.text import TextTower, load_transformers_tower
from mlilt.towers.vision import VisionTower, load_timm_tower

TextBuilder = Callable[[TowerConfig], TextTower]
VisionBuilder = Callable[[TowerConfig], VisionTower]


def _transformers_text(config: TowerConfig) -> TextTower:
    prefix = config.prefix
    if prefix is None:  # the model's own convention
        prefix = E5_PREFIX if "e5" in config.name.lower() else ""
    return load_transformers_tower(config.name, config.name, config.pooling, prefix, config.max_length)


def _offline_e5(config: TowerConfig) -> TextTower:
    prefix = E5_PREFIX if config.prefix is None else config.prefix
    return load_transformers_tower(config.name, str(ensure_e5_small()), config.pooling, prefix, config.max_length)


def _reading(config: TowerConfig) -> dict:
    """How a vision tower reads pictures."""
    return {"background": config.background, "max_pixels": config.max_pixels}


def _timm_vision(config: TowerConfig) -> VisionTower:
    return load_timm_tower(config.name, config.weights, **_reading(config))


def _offline_effnet(config: TowerConfig) -> VisionTower:
    return VisionTower(load_efficientnet_lite0(num_classes=0), config.name, **_reading(config))


TEXT_TOWERS: dict[str, TextBuilder] = {OFFLINE_TEXT: _offline_e5}
VISION_TOWERS: dict[str, VisionBuilder] = {OFFLINE_VISION: _offline_effnet}


def register_text_tower(name_or_prefix: str, builder: TextBuilder) -> None:
    """Build text towers named ``name_or_prefix`` (or starting with it, when it ends with ``:``) with ``builder``."""
    TEXT_TOWERS[name_or_prefix] = builder


def register_vision_tower(name_or_prefix: str, builder: VisionBuilder) -> None:
    """Build vision towers named ``name_or_prefix`` (or starting with it, when it ends with ``:``) with ``builder``."""
    VISION_TOWERS[name_or_prefix] = builder


def _builder(table: dict, name: str, fallback):
    if name in table:
        return table[name]
    prefixed = [p for p in table if p.endswith(":") and name.startswith(p)]
    return table[max(prefixed, key=len)] if prefixed else fallback


def build_text_tower(config: TowerConfig) -> TextTower:
    """The text tower a config names: the built-in offline e5-small, a registered kind, or a transformers model."""
    return _builder(TEXT_TOWERS, config.name, _transformers_text)(config)


def build_vision_tower(config: TowerConfig) -> VisionTower:
    """The vision tower a config names: the built-in offline EfficientNet-Lite0, a registered kind, or timm."""
    return _builder(VISION_TOWERS, config.name, _timm_vision)(config)
