"""Opening pictures the one way every part of mlilt does (training, features, evaluation, demo)."""

from __future__ import annotations

from PIL import Image


def open_rgb(path: str) -> Image.Image:
    """The picture at ``path`` as an RGB image, fully decoded."""
    with Image.open(path) as image:
        return image.convert("RGB")
