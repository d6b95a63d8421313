"""Caption files a user brings: a JSONL or CSV file, or a folder of pictures holding one of them.

Each record needs ``image`` (a path, relative to the file, or a URL) and ``caption``; ``lang``,
``image_id`` (default: the image path), ``split`` (default: a hash split by picture), ``source`` and
``primary`` are optional. Several captions per picture are simply several records. CSV files may start with
a byte-order mark.

Picture URLs are downloaded once into the cache, several at a time, with a progress bar and a timeout; only a
complete download that is a picture is kept. A failed one is printed with its reason and left as the URL,
which validation then counts as ``download_failed``: it never stops the run on its own, and nothing that is
not a picture is ever cached as one.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import os
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from mlilt.cache import cache_dir
from mlilt.data.records import SPLITS, CaptionRecord, split_of
from mlilt.errors import DataError, NotFoundError, first_line

CAPTION_FILE_NAMES = ("captions.jsonl", "captions.csv")
CAPTION_SUFFIXES = (".jsonl", ".csv")
DOWNLOAD_TIMEOUT = 10.0  # seconds a picture URL may take to answer (and between bytes)
DOWNLOAD_WORKERS = 8


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


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
    """The records of a JSONL or CSV caption file, read row by row (a million rows never sit in memory as
    dicts). Strings shared by many records (a picture's path and id, languages, sources) are kept once."""
    urls = set()
    for number, row in _rows(path):  # first pass: check the fields, collect the picture URLs
        if "image" not in row or "caption" not in row:
            raise DataError(f"{path}, record {number}: needs 'image' and 'caption' fields, has {sorted(row)}")
        if is_url(str(row["image"])):
            urls.add(str(row["image"]))
    local = download_pictures(sorted(urls))
    resolved: dict[str, str] = {}  # picture as written -> its local path (resolved once per picture)
    records = []
    for _, row in _rows(path):
        image = sys.intern(str(row["image"]))
        if image not in resolved:
            where = local.get(image, image) if is_url(image) else _relative_to(image, path.parent)
            resolved[image] = sys.intern(where)
        records.append(caption_record(row, resolved[image], image, lang))
    return records


def caption_record(row: dict, image: str, default_id: str, lang: str | None) -> CaptionRecord:
    """A record from one row: ``caption``, and optional ``image_id``, ``split``, ``lang``, ``source``, ``primary``."""
    image_id = sys.intern(str(row.get("image_id") or default_id))
    split = row.get("split") or split_of(image_id)
    if split not in SPLITS:
        raise DataError(f"split {split!r} of {image_id} is not one of {SPLITS}")
    language = row.get("lang") or lang
    return CaptionRecord(
        image=image,
        caption=row["caption"],  # as read: validation turns numbers into text and reports anything else
        image_id=image_id,
        split=sys.intern(split),
        lang=sys.intern(language) if isinstance(language, str) else language,
        source=sys.intern(str(row.get("source") or "human")),
        primary=str(row.get("primary", "true")).lower() not in ("false", "0", "no"),
    )


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    """``(record number, row)`` of a caption file, one at a time."""
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: a byte-order mark is not a field name
            yield from enumerate(csv.DictReader(handle), start=1)
        return
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}, line {number}: not valid JSON ({err})") from err
            if not isinstance(row, dict):
                shown = line.strip()[:60]
                expected = "expected a JSON object with 'image' and 'caption'"
                raise DataError(f"{path}, line {number}: {expected}, got {shown}")
            yield number, row


def _relative_to(image: str, base: Path) -> str:
    """A relative picture path is taken relative to the caption file."""
    path = Path(image)
    return str(path if path.is_absolute() else (base / path).resolve())


def download_pictures(urls: list[str]) -> dict[str, str]:
    """URL -> local file of each picture downloaded (or found in the cache); failed ones are left out and printed."""
    folder = cache_dir("downloads")
    targets = {url: folder / (hashlib.sha256(url.encode()).hexdigest()[:24] + Path(url).suffix[:5]) for url in urls}
    todo = [url for url in urls if not targets[url].is_file()]
    if todo:
        with (
            ThreadPoolExecutor(DOWNLOAD_WORKERS) as pool,
            tqdm(
                total=len(todo), desc="downloading pictures", unit="pic", file=sys.stderr, disable=len(todo) < 4
            ) as bar,
        ):
            for url, problem in zip(todo, pool.map(lambda u: _download(u, targets[u]), todo)):
                bar.update(1)
                if problem:
                    tqdm.write(f"mlilt: could not download {url}: {problem}", file=sys.stderr)
    return {url: str(target) for url, target in targets.items() if target.is_file()}


def _download(url: str, target: Path) -> str | None:
    """Fetch one picture into ``target`` (atomically, only if complete and a picture); the problem, or None."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            data, kind = response.read(), response.headers.get_content_type()
    except (OSError, http.client.HTTPException, ValueError) as err:  # refused, timed out, cut off mid-way
        return f"{type(err).__name__}: {first_line(err)}"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return f"not a picture ({kind}, {len(data):,} bytes); nothing was cached"
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)
    return None
