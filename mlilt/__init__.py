"""mlilt: LilT-style parameter-efficient image-text models for languages with little paired data.

Khan & Fu, "Contrastive Alignment of Vision to Language Through Parameter-Efficient Transfer
Learning", ICLR 2023.

The public API, imported on first use (``import mlilt`` itself loads nothing heavy)::

    model = mlilt.load("runs/sw-adapters")           # or a Hub id; model.embed_texts / embed_images
    model = mlilt.build_model(mlilt.ModelConfig())   # the built-in offline towers, untrained heads
    mlilt.list_methods()                             # frozen, layernorm, bitfit, ia3, lora, adapters, full
"""

from __future__ import annotations

import importlib

from mlilt.version import __version__

# Public name -> the module that defines it.
_API = {
    "load": "mlilt.hub.loading",
    "build_model": "mlilt.model",
    "assemble": "mlilt.model",
    "DualEncoder": "mlilt.model",
    "RunConfig": "mlilt.config",
    "ModelConfig": "mlilt.config",
    "TowerConfig": "mlilt.config",
    "DataConfig": "mlilt.config",
    "TrainConfig": "mlilt.config",
    "load_run_config": "mlilt.config",
    "run_adapt": "mlilt.adapt",
    "TuningMethod": "mlilt.tuning.registry",
    "register_method": "mlilt.tuning.registry",
    "list_methods": "mlilt.tuning.registry",
    "Source": "mlilt.data.sources",
    "register_source": "mlilt.data.sources",
    "load_records": "mlilt.data.sources",
    "register_text_tower": "mlilt.towers.registry",
    "register_vision_tower": "mlilt.towers.registry",
    "MliltError": "mlilt.errors",
}
_ALIASES = {"list_methods": "method_names"}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'mlilt' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), _ALIASES.get(name, name))
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
