"""The vision tower: any timm model, with timm's own pretrained data config for resizing and normalisation."""

from __future__ import annotations

import timm
import torch
from PIL import Image, ImageOps
from torch import nn

from mlilt.config import TowerConfig
from mlilt.constants import OFFLINE_VISION

VIEWS = ("plain", "flip", "zoom")
ZOOM_KEEP = 0.8  # the "zoom" view keeps the central 80% of the picture


class VisionTower(nn.Module):
    """A timm model returning pooled features (its classifier removed).

    Args:
        model: A timm model created with ``num_classes=0``.
        name: The name it was built from (recorded in adapter files and cache keys).
    """

    def __init__(self, model: nn.Module, name: str):
        super().__init__()
        self.model = model
        self.name = name
        self.data_config = timm.data.resolve_model_data_config(model)
        self.transform = timm.data.create_transform(**self.data_config, is_training=False)

    @property
    def num_features(self) -> int:
        return self.model.num_features

    def preprocess(self, image: Image.Image, view: str = "plain") -> torch.Tensor:
        """One picture -> a normalised tensor, after the given view (plain, flip, zoom)."""
        image = image.convert("RGB")
        if view == "flip":
            image = ImageOps.mirror(image)
        elif view == "zoom":
            w, h = image.size
            dw, dh = int(w * (1 - ZOOM_KEEP) / 2), int(h * (1 - ZOOM_KEEP) / 2)
            image = image.crop((dw, dh, w - dw, h - dh))
        elif view != "plain":
            raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
        return self.transform(image)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels)


def build_vision_tower(config: TowerConfig) -> VisionTower:
    """Load the tower a config names: the built-in offline EfficientNet-Lite0, or a timm model."""
    if config.name == OFFLINE_VISION:
        from mlilt.towers.offline_effnet import load_efficientnet_lite0

        return VisionTower(load_efficientnet_lite0(num_classes=0), config.name)
    overlay = {"file": config.weights} if config.weights else None
    try:
        model = timm.create_model(config.name, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay)
    except RuntimeError as err:
        raise RuntimeError(
            f"could not load vision model {config.name!r}: {err}\n"
            "Offline? Use the built-in tower (--vision offline:efficientnet-lite0) or pass a local weights file."
        ) from err
    return VisionTower(model.eval(), config.name)
