"""What the demo accepts as an uploaded picture: size, pixel count and readability are checked first."""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import Image, UnidentifiedImageError

MAX_UPLOAD_BYTES = 10 * 2**20
MAX_UPLOAD_PIXELS = 40_000_000


class UploadRejected:
    """What a checked image upload becomes when it is not a usable picture (the reason is shown in the UI)."""

    def __init__(self, reason: str):
        self.reason = reason


def check_upload(path: str | Path) -> str | None:
    """Why an uploaded file cannot be searched with (too big, too many pixels, not a picture), or ``None``."""
    size = Path(path).stat().st_size
    if size > MAX_UPLOAD_BYTES:
        return f"That file is {size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB."
    try:
        with Image.open(path) as image:
            pixels = image.width * image.height
            if pixels > MAX_UPLOAD_PIXELS:
                return f"That picture has {pixels / 1e6:.0f} megapixels; the limit is {MAX_UPLOAD_PIXELS // 10**6}."
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return "That file is not a picture this app can read (PNG, JPEG, WebP, GIF or BMP)."
    return None


@functools.cache
def checked_image_class():
    """``gr.Image`` (type ``pil``) that turns unusable uploads into :class:`UploadRejected` (built once)."""
    import gradio as gr  # optional heavy dependency (the demo extra; seconds to import)

    class CheckedImage(gr.Image):
        is_template = True  # rendered by the frontend's own Image component

        def preprocess(self, payload):
            if payload is not None and payload.path:
                reason = check_upload(payload.path)
                if reason:
                    Path(payload.path).unlink(missing_ok=True)  # never kept, never served back
                    return UploadRejected(reason)
            return super().preprocess(payload)

    return CheckedImage
