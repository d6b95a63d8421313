"""Caption files a user brings: a JSONL or CSV file, or a folder of pictures holding one of them.

Each record needs ``image`` (a path, relative to the file, or a URL) and ``caption``; ``lang``,
``image_id`` (default: the image path), ``split`` (default: a hash split by picture), ``source`` and
``primary`` are optional. Several captions per picture are simply several records.
"""

from __future__ import annotations

import csv
import hashlib
import json
import urllib.request
from pathlib import Path

from mlilt.cache import cache_dir
from mlilt.data.records import SPLITS, CaptionRecord, split_of
from mlilt.errors import DataError, NotFoundError

CAPTION_FILE_NAMES = ("captions.jsonl", "captions.csv")
CAPTION_SUFFIXES = (".jsonl", ".csv")


def is_caption_path(path: Path) -> bool:
    """Whether ``path`` names a caption file (by suffix) or a plain folder (not a saved ``datasets`` dataset)."""
    if path.is_dir():
        return not (path / "dataset_info.json").exists() and not (path / "dataset_dict.json").exists()
    return path.suffix in CAPTION_SUFFIXES


def load_caption_path(source: str, lang: str | None = None) -> list[CaptionRecord]:
    """Records of a caption file, or of the ``captions.jsonl`` / ``captions.csv`` inside a folder."""
    path = Path(source)
    if path.is_dir():
        for name in CAPTION_FILE_NAMES:
            if (path / name).exists():
                return load_caption_file(path / name, lang)
        raise NotFoundError(f"{path} is a folder without {' or '.join(CAPTION_FILE_NAMES)}")
    if not path.exists():
        raise NotFoundError(f"no caption file at {path}")
    return load_caption_file(path, lang)


def load_caption_file(path: Path, lang: str | None = None) -> list[CaptionRecord]:
    rows = _read_rows(path)
    records = []
    for number, row in enumerate(rows, start=1):
        if "image" not in row or "caption" not in row:
            raise DataError(f"{path}, record {number}: needs 'image' and 'caption' fields, has {sorted(row)}")
        image = _localise(str(row["image"]), path.parent)
        records.append(caption_record(row, image, str(row["image"]), lang))
    return records


def caption_record(row: dict, image: str, default_id: str, lang: str | None) -> CaptionRecord:
    """A record from one row: ``caption``, and optional ``image_id``, ``split``, ``lang``, ``source``, ``primary``."""
    image_id = str(row.get("image_id") or default_id)
    split = row.get("split") or split_of(image_id)
    if split not in SPLITS:
        raise DataError(f"split {split!r} of {image_id} is not one of {SPLITS}")
    return CaptionRecord(
        image=image,
        caption=row["caption"] if isinstance(row["caption"], str) else "",
        image_id=image_id,
        split=split,
        lang=row.get("lang") or lang,
        source=row.get("source") or "human",
        primary=str(row.get("primary", "true")).lower() not in ("false", "0", "no"),
    )


def _read_rows(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, line {number}: not valid JSON ({err})") from err
    return rows


def _localise(image: str, base: Path) -> str:
    """A URL is downloaded once into the cache; a relative path is taken relative to the caption file."""
    if image.startswith(("http://", "https://")):
        target = cache_dir("downloads") / (hashlib.sha256(image.encode()).hexdigest()[:24] + Path(image).suffix[:5])
        if not target.exists():
            try:
                with urllib.request.urlopen(image, timeout=20) as response:
                    target.write_bytes(response.read())
            except OSError:
                return image  # reported as a missing image by validation
        return str(target)
    path = Path(image)
    return str(path if path.is_absolute() else (base / path).resolve())
