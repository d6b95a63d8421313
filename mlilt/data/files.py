"""Caption data a user brings: a JSONL or CSV file, a folder of pictures with a captions file, or a
Hugging Face ``datasets`` dataset (by Hub name or local path).

Each record needs ``image`` (a path, relative to the file, or a URL) and ``caption``; ``lang``,
``image_id`` (default: the image path) and ``split`` (default: a hash split by picture) are optional.
Several captions per picture are simply several records.
"""

from __future__ import annotations

import csv
import hashlib
import json
import urllib.request
from pathlib import Path

from mlilt.cache import cache_dir
from mlilt.data.records import SPLITS, CaptionRecord, split_of

CAPTION_FILE_NAMES = ("captions.jsonl", "captions.csv")


PUBLIC_SETS = ("xm3600", "multi30k", "xtd10", "coco")


def load_caption_source(
    source: str, lang: str | None = None, image_column: str = "image", caption_column: str = "caption"
) -> list[CaptionRecord]:
    """Records from a caption file, a folder holding ``captions.jsonl``/``captions.csv``, a public evaluation
    set in a local copy (``xm3600:PATH``, ``multi30k:PATH``, ``xtd10:PATH``, ``coco:PATH``), or a datasets name."""
    kind, _, where = source.partition(":")
    if kind in PUBLIC_SETS and where:
        from mlilt.data import public_sets

        if kind == "coco":
            return public_sets.load_coco_captions(where, lang=lang or "en")
        return getattr(public_sets, f"load_{kind}")(where, lang)
    path = Path(source)
    if path.is_dir() and not (path / "dataset_info.json").exists() and not (path / "dataset_dict.json").exists():
        for name in CAPTION_FILE_NAMES:
            if (path / name).exists():
                return load_caption_file(path / name, lang)
        raise FileNotFoundError(f"{path} is a folder without {' or '.join(CAPTION_FILE_NAMES)}")
    if path.suffix in (".jsonl", ".csv"):
        if not path.exists():
            raise FileNotFoundError(f"no caption file at {path}")
        return load_caption_file(path, lang)
    return load_hf_dataset(source, lang, image_column, caption_column)


def load_caption_file(path: Path, lang: str | None = None) -> list[CaptionRecord]:
    rows = _read_rows(path)
    records = []
    for number, row in enumerate(rows, start=1):
        if "image" not in row or "caption" not in row:
            raise ValueError(f"{path}, record {number}: needs 'image' and 'caption' fields, has {sorted(row)}")
        image = _localise(str(row["image"]), path.parent)
        records.append(_record(row, image, str(row["image"]), lang))
    return records


def _record(row: dict, image: str, default_id: str, lang: str | None) -> CaptionRecord:
    image_id = str(row.get("image_id") or default_id)
    split = row.get("split") or split_of(image_id)
    if split not in SPLITS:
        raise ValueError(f"split {split!r} of {image_id} is not one of {SPLITS}")
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
            raise ValueError(f"{path}, line {number}: not valid JSON ({err})") from err
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


def load_hf_dataset(name: str, lang: str | None, image_column: str, caption_column: str) -> list[CaptionRecord]:
    """A ``datasets`` dataset; its pictures are written once into the cache as PNG files."""
    import datasets

    try:
        loaded = datasets.load_from_disk(name) if Path(name).exists() else datasets.load_dataset(name)
    except Exception as err:  # datasets raises many kinds when offline or the name is wrong
        raise FileNotFoundError(
            f"could not load dataset {name!r} ({type(err).__name__}: {err}). Offline? Save it with "
            "dataset.save_to_disk(PATH) where you have a network and pass that PATH, or use a JSONL/CSV file."
        ) from err
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    folder = cache_dir("datasets", "hf-" + hashlib.sha256(name.encode()).hexdigest()[:16])
    records = []
    for part, dataset in parts:
        missing = {image_column, caption_column} - set(dataset.column_names)
        if missing:
            raise ValueError(f"dataset {name!r} has no column(s) {sorted(missing)}; columns: {dataset.column_names}")
        for index, row in enumerate(dataset):
            image_id = str(row.get("image_id") or f"{part or 'data'}-{index}")
            path = folder / f"{hashlib.sha256(image_id.encode()).hexdigest()[:24]}.png"
            if not path.exists():
                row[image_column].convert("RGB").save(path)
            captions = row[caption_column] if isinstance(row[caption_column], list) else [row[caption_column]]
            split = part if part in SPLITS else None
            for caption in captions:
                records.append(
                    _record(
                        {"caption": caption, "image_id": image_id, "split": split, "lang": row.get("lang")},
                        str(path),
                        image_id,
                        lang,
                    )
                )
    return records
