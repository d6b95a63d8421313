"""Adapter files: only what was trained (``adapter_model.safetensors``) plus what it fits (``adapter_config.json``).

Loading checks the config against the base towers (names, hidden sizes, method, shapes) and
refuses, with a message that says why, anything that does not fit, a malformed config, and any
pickle file: weights are read only from safetensors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mlilt.config import ModelConfig
from mlilt.constants import ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME
from mlilt.errors import AdapterMismatchError, NotFoundError, first_line
from mlilt.model import DualEncoder, build_model, trainable_state
from mlilt.version import __version__

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
FORMAT_VERSION = 1
MAX_CONFIG_BYTES = 1 << 20
MAX_WEIGHTS_BYTES = 1 << 34  # 16 GiB: a full fine-tune of a large tower, with room to spare


def adapter_config(model: DualEncoder, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """What an adapter fits and how it was made."""
    report = model.parameter_report()
    return {
        "format_version": FORMAT_VERSION,
        "mlilt_version": __version__,
        "model": _model_config_dict(model.config),
        "text_hidden_size": model.text.hidden_size,
        "vision_num_features": model.vision.num_features,
        "temperature": float(1.0 / model.logit_scale.exp().item()),
        "parameters": {part: dataclasses.asdict(count) | {"percent": count.percent} for part, count in report.items()},
        **(info or {}),
    }


def save_adapter(model: DualEncoder, folder: Path, info: dict[str, Any] | None = None) -> Path:
    """Write the trainable weights and the config into ``folder`` (each file replaced atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in trainable_state(model).items()}
    tmp = folder / (ADAPTER_WEIGHTS_NAME + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt", "mlilt_version": __version__})
    os.replace(tmp, folder / ADAPTER_WEIGHTS_NAME)
    tmp = folder / (ADAPTER_CONFIG_NAME + ".tmp")
    tmp.write_text(json.dumps(adapter_config(model, info), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, folder / ADAPTER_CONFIG_NAME)
    return folder


def read_adapter_config(folder: Path) -> dict[str, Any]:
    """The config of an adapter folder, checked for presence, format and pickles."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFoundError(f"no adapter folder at {folder}")
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise AdapterMismatchError(
            f"{folder} holds pickle files ({', '.join(pickles)}); mlilt loads weights only from safetensors, "
            "since unpickling can run arbitrary code. Remove them or convert them with safetensors."
        )
    path = folder / ADAPTER_CONFIG_NAME
    if not path.exists():
        raise NotFoundError(f"{folder} has no {ADAPTER_CONFIG_NAME}: is this an mlilt run or adapter folder?")
    _regular_file(path, MAX_CONFIG_BYTES)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        model = config["model"]
        ModelConfig(
            text=model["text"],
            vision=model["vision"],
            **{k: v for k, v in model.items() if k not in ("text", "vision")},
        )
        sizes_ok = all(isinstance(config[k], int) for k in ("text_hidden_size", "vision_num_features"))
        if not sizes_ok or not isinstance(config.get("format_version", 0), int):
            raise TypeError("text_hidden_size, vision_num_features and format_version must be whole numbers")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise AdapterMismatchError(f"{path} is malformed ({type(err).__name__}: {first_line(err)})") from None
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise AdapterMismatchError(f"{path} needs a newer mlilt (format {config['format_version']})")
    if not (folder / ADAPTER_WEIGHTS_NAME).exists():
        raise NotFoundError(f"{folder} has no {ADAPTER_WEIGHTS_NAME}")
    _regular_file(folder / ADAPTER_WEIGHTS_NAME, MAX_WEIGHTS_BYTES)
    return config


def _regular_file(path: Path, max_bytes: int) -> None:
    """Refuse what is not a plain file (a FIFO would block, a device never ends) or is implausibly large."""
    info = path.stat()  # follows a link: what is read is what it points to
    if not stat.S_ISREG(info.st_mode):
        raise AdapterMismatchError(f"{path} is not a regular file (a pipe, a device or a folder); refusing to read it")
    if info.st_size > max_bytes:
        raise AdapterMismatchError(f"{path} is {info.st_size:,} bytes, more than an adapter file can be")


def model_config_of(folder: Path) -> ModelConfig:
    """The :class:`ModelConfig` an adapter folder was trained with."""
    model = read_adapter_config(folder)["model"]
    return ModelConfig(**model)


def load_adapter_into(model: DualEncoder, folder: Path) -> DualEncoder:
    """Load an adapter folder onto ``model`` (built with the same towers and methods), checking the fit."""
    folder = Path(folder)
    config = read_adapter_config(folder)
    expected = {
        "text tower": (config["model"]["text"]["name"], config["text_hidden_size"]),
        "vision tower": (config["model"]["vision"]["name"], config["vision_num_features"]),
    }
    actual = {
        "text tower": (model.text.name, model.text.hidden_size),
        "vision tower": (model.vision.name, model.vision.num_features),
    }
    for part, (name, size) in expected.items():
        if actual[part] != (name, size):
            raise AdapterMismatchError(
                f"{folder} was trained on {part} {name!r} (size {size}), but this model's {part} is "
                f"{actual[part][0]!r} (size {actual[part][1]}). Load it onto the base it was trained with."
            )
    for side in ("text", "vision"):
        if config["model"][side]["method"] != getattr(model.config, side).method:
            raise AdapterMismatchError(
                f"{folder}: {side} method {config['model'][side]['method']!r} does not match "
                f"this model's {getattr(model.config, side).method!r}"
            )
    try:
        weights = load_file(str(folder / ADAPTER_WEIGHTS_NAME))
    except (SafetensorError, OSError) as err:
        raise AdapterMismatchError(
            f"{folder / ADAPTER_WEIGHTS_NAME} cannot be read ({first_line(err)}): it is truncated or not a "
            "safetensors file"
        ) from None
    own = trainable_state(model)
    missing, unexpected = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    if missing or unexpected:
        raise AdapterMismatchError(f"{folder} does not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, tensor in weights.items():
        if tensor.shape != own[name].shape:
            raise AdapterMismatchError(
                f"{folder}: {name} has shape {tuple(tensor.shape)}, the model expects {tuple(own[name].shape)}"
            )
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise AdapterMismatchError(
                f"{folder}: {name} holds {bad} NaN or infinite values: the run that wrote it diverged, or the file "
                "is damaged. Retrain (with a lower --lr if training diverged)."
            )
    model.load_state_dict(weights, strict=False)
    return model


def load_folder(folder: str | Path) -> DualEncoder:
    """A ready model from a local adapter (or run) folder: the base towers by name, then the adapter."""
    model = build_model(model_config_of(Path(folder)))
    return load_adapter_into(model, Path(folder)).eval()


def _model_config_dict(config: ModelConfig) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    data["image_views"] = list(config.image_views)
    return data
