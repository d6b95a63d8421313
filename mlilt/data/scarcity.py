"""Scarce-data controls: keep only part of the training data, deterministically, for learning curves.

Validation and test records are never touched, so every point of a learning curve is measured on the same pictures.
"""

from __future__ import annotations

import hashlib

from mlilt.data.records import CaptionRecord
from mlilt.errors import ConfigError


def _rank(seed: int, *parts: str) -> str:
    """A stable pseudo-random order key (independent of Python's hash seed and of the input order)."""
    return hashlib.sha256("\x1f".join((str(seed), *parts)).encode("utf-8")).hexdigest()


def limit_training(
    records: list[CaptionRecord], max_captions: int | None = None, max_images: int | None = None, seed: int = 0
) -> list[CaptionRecord]:
    """Subsample the ``train`` split; keep every ``val``/``test`` record.

    ``max_images`` keeps the training records of that many pictures (all their captions); then ``max_captions``
    keeps that many of the remaining training records. Both choices depend only on the ids, captions and ``seed``:
    the same call gives the same subset whatever the input order, and a smaller limit gives a subset of a larger one
    (nested learning-curve points).

    Args:
        records: Records of every split.
        max_captions: Training records to keep at most (None: no limit).
        max_images: Training pictures to keep at most (None: no limit).
        seed: Changes which pictures / captions are kept.

    Returns:
        The kept records, in their input order.
    """
    for name, value in (("max_captions", max_captions), ("max_images", max_images)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be >= 1 (or None for no limit), got {value}")
    train = [r for r in records if r.split == "train"]
    if max_images is not None:
        pictures = sorted({r.image_id for r in train}, key=lambda image_id: _rank(seed, image_id))
        chosen = set(pictures[:max_images])
        train = [r for r in train if r.image_id in chosen]
    if max_captions is not None and len(train) > max_captions:
        ordered = sorted(range(len(train)), key=lambda i: (_rank(seed, train[i].image_id, train[i].caption), i))
        train = [train[i] for i in sorted(ordered[:max_captions])]
    kept = {id(r) for r in train}
    return [r for r in records if r.split != "train" or id(r) in kept]
