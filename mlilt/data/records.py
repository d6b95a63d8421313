"""The one record type every caption source produces, and the deterministic split by picture."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SPLITS = ("train", "val", "test")
DEFAULT_SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


@dataclass(frozen=True, slots=True)  # slots: a million records without a dict each
class CaptionRecord:
    """One (picture, caption) pair.

    Attributes:
        image: Path (or URL) of the picture.
        caption: The text.
        image_id: Stable id of the picture; several records may share it (several captions).
        split: ``train``, ``val`` or ``test``; always by picture, never by caption.
        lang: ISO 639-1 (or 639-3) code of the caption, if known.
        source: ``human`` or ``machine-translated:<model id>``.
        primary: True for the caption used in evaluation (e.g. the CLDR short name); a picture's
            other captions (keywords) are training-only.
    """

    image: str
    caption: str
    image_id: str
    split: str
    lang: str | None = None
    source: str = "human"
    primary: bool = True


def split_of(image_id: str, fractions: tuple[float, float, float] = DEFAULT_SPLIT_FRACTIONS) -> str:
    """Deterministic split of a picture from a hash of its id: the same for every language and run."""
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must add up to 1, got {fractions}")
    digest = hashlib.sha256(image_id.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    if u < fractions[0] + fractions[1]:
        return "val"
    return "test"
