"""The vision tower: any timm model, with timm's own pretrained data config for resizing and normalisation."""

from __future__ import annotations

import difflib

import timm
import torch
from PIL import Image, ImageOps
from torch import nn

from mlilt.data.images import DEFAULT_BACKGROUND, MAX_PIXELS, open_picture, to_rgb
from mlilt.errors import TowerError, first_line

VIEWS = ("plain", "flip", "zoom")
ZOOM_KEEP = 0.8  # the "zoom" view keeps the central 80% of the picture


class VisionTower(nn.Module):
    """A timm model returning pooled features (its classifier removed).

    Args:
        model: A timm model created with ``num_classes=0``.
        name: The name it was built from (recorded in adapter files and cache keys).
        background: The colour transparent pictures are composited on (part of the feature cache key).
        max_pixels: Larger pictures are refused before they are decoded.
    """

    def __init__(
        self, model: nn.Module, name: str, background: str = DEFAULT_BACKGROUND, max_pixels: int = MAX_PIXELS
    ):
        super().__init__()
        self.model = model
        self.name = name
        self.background = background
        self.max_pixels = max_pixels
        self.data_config = timm.data.resolve_model_data_config(model)
        self.transform = timm.data.create_transform(**self.data_config, is_training=False)

    @property
    def num_features(self) -> int:
        return self.model.num_features

    def open(self, path: str) -> Image.Image:
        """The picture at ``path``, decoded, refused above ``max_pixels`` (:mod:`mlilt.data.images`)."""
        return open_picture(path, self.max_pixels)

    def preprocess(self, image: Image.Image, view: str = "plain") -> torch.Tensor:
        """One picture -> a normalised tensor, after the given view (plain, flip, zoom)."""
        image = to_rgb(image, self.background)
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


def load_timm_tower(name: str, weights: str | None = None, **reading) -> VisionTower:
    """A :class:`VisionTower` of timm architecture ``name``: its Hub weights, or a local ``weights`` file.

    ``reading``: how it reads pictures (``background``, ``max_pixels``).
    """
    if ":" not in name and not timm.is_model(name):  # hf-hub:/local-dir: names are timm's to resolve
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.7)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise TowerError(
            f"unknown vision model {name!r}: not a timm architecture (timm.list_models() names them).{hint} "
            "The built-in offline tower is offline:efficientnet-lite0."
        )
    overlay = {"file": weights} if weights else None
    try:
        model = timm.create_model(name, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay)
    except (RuntimeError, OSError, ValueError) as err:
        raise TowerError(
            f"could not load the weights of vision model {name!r}: {first_line(err)}. "
            "Offline? Use the built-in tower (--vision offline:efficientnet-lite0) or pass a local weights file "
            "(--vision-weights)."
        ) from err
    return VisionTower(model.eval(), name, **reading)
