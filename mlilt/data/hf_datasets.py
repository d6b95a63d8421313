"""A Hugging Face ``datasets`` dataset as caption records, by Hub name or by a ``save_to_disk`` folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlilt.cache import cache_dir
from mlilt.data.files import caption_record
from mlilt.data.images import save_png
from mlilt.data.records import SPLITS, CaptionRecord
from mlilt.errors import DataError, NotFoundError


def load_hf_dataset(
    name: str, lang: str | None, image_column: str = "image", caption_column: str = "caption"
) -> list[CaptionRecord]:
    """The records of a ``datasets`` dataset; its pictures are written once into the cache as PNG files."""
    import datasets  # heavy dependency (pyarrow, pandas): only for this source

    try:
        loaded = datasets.load_from_disk(name) if Path(name).exists() else datasets.load_dataset(name)
    except Exception as err:  # datasets raises many kinds when offline or the name is wrong
        raise NotFoundError(
            f"could not load dataset {name!r} ({type(err).__name__}: {err}). Offline? Save it with "
            "dataset.save_to_disk(PATH) where you have a network and pass that PATH, or use a JSONL/CSV file."
        ) from err
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    folder = cache_dir("datasets", "hf-" + hashlib.sha256(name.encode()).hexdigest()[:16])
    records = []
    for part, dataset in parts:
        missing = {image_column, caption_column} - set(dataset.column_names)
        if missing:
            raise DataError(f"dataset {name!r} has no column(s) {sorted(missing)}; columns: {dataset.column_names}")
        for index, row in enumerate(dataset):
            image_id = str(row.get("image_id") or f"{part or 'data'}-{index}")
            path = folder / f"{hashlib.sha256(image_id.encode()).hexdigest()[:24]}.png"
            if not path.exists():
                save_png(row[image_column], path)
            captions = row[caption_column] if isinstance(row[caption_column], list) else [row[caption_column]]
            split = part if part in SPLITS else None
            for caption in captions:
                fields = {"caption": caption, "image_id": image_id, "split": split, "lang": row.get("lang")}
                records.append(caption_record(fields, str(path), image_id, lang))
    return records
