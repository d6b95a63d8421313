"""Opening pictures the one way every part of mlilt does (validation, features, training, evaluation, demo).

- A picture larger than ``max_pixels`` is refused before it is decoded (a 144-megapixel photo would take
  gigabytes of memory for a 224-pixel tower).
- Transparent pictures (RGBA, LA, palette with transparency) are composited on a background colour, white
  by default: icons and logos are drawn to be seen on a light page, and flattening on black (what a plain
  ``convert("RGB")`` does) turns dark strokes invisible.
- 16-bit and 32-bit greyscale pictures are scaled to 8 bits, not clipped (a plain conversion makes a 16-bit
  PNG almost all white).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageColor

from mlilt.errors import DataError

MAX_PIXELS = 40_000_000  # 40 megapixels: above any camera's picture a caption set needs; about 160 MB decoded
DEFAULT_BACKGROUND = "white"
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class PictureError(DataError):
    """A picture cannot be used: too large, unreadable, or not a picture."""


def check_background(colour: str) -> str:
    """``colour`` if PIL knows it (a name such as ``white`` or ``#808080``), else ValueError."""
    ImageColor.getrgb(colour)
    return colour


def open_picture(path: str, max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """The picture at ``path``, fully decoded, in its own mode; a :class:`PictureError` above ``max_pixels``."""
    with Image.open(path) as image:
        if max_pixels is not None and image.width * image.height > max_pixels:
            raise PictureError(
                f"{path}: {image.width} x {image.height} pixels ({image.width * image.height / 1e6:.0f} megapixels) "
                f"is more than the limit of {max_pixels / 1e6:g} megapixels (raise it with --max-pixels)"
            )
        image.load()
        return image.copy()  # leaving the block closes the file and frees the decoded image


def to_rgb(image: Image.Image, background: str = DEFAULT_BACKGROUND) -> Image.Image:
    """An RGB picture: transparency composited on ``background``, wide greyscale scaled to 8 bits."""
    if image.mode == "RGB":
        return image
    if image.mode in _WIDE_GREY:
        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 1.0
        return Image.fromarray(np.clip(np.rint(values / scale), 0, 255).astype(np.uint8), "L").convert("RGB")
    if "A" in image.mode or "a" in image.mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, ImageColor.getrgb(background) + (255,))
        return Image.alpha_composite(backdrop, rgba).convert("RGB")
    return image.convert("RGB")


def open_rgb(path: str, background: str = DEFAULT_BACKGROUND, max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """The picture at ``path`` as RGB (see :func:`to_rgb`), refused above ``max_pixels``."""
    return to_rgb(open_picture(path, max_pixels), background)


def save_png(image: Image.Image, path) -> None:
    """Save as PNG in the picture's own mode (transparency kept); a mode PNG cannot hold is converted to RGB first."""
    try:
        image.save(path, format="PNG")
    except (OSError, ValueError):
        to_rgb(image).save(path, format="PNG")
