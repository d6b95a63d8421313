"""Public image-caption evaluation sets, read from a local copy into ``CaptionRecord`` lists.

- XM3600 (Crossmodal-3600; Thapliyal et al., EMNLP 2022): ``captions.jsonl``, one line per picture with
  ``image/key`` and, per locale, ``{"caption": [...], ...}``; pictures in ``images/<key>.jpg``. Test only.
- Multi30K (Elliott et al. 2016; github.com/multi30k/dataset, ``data/task1``): ``raw/<split>.<lang>[.gz]``, one
  caption per line, aligned with ``image_splits/<split>.txt`` (Flickr30k file names).
- XTD10 (Aggarwal & Kale 2020; github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10):
  ``test_1kcaptions_<lang>.txt`` aligned with ``test_image_names.txt`` (COCO 2014 file names). Test only.
- COCO-style caption JSON (``images`` with ``id``/``file_name``, ``annotations`` with ``image_id``/``caption``).

None of them is downloaded here: each loader takes the path of a copy you fetched, and says where to get it.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from mlilt.data.records import SPLITS, CaptionRecord, split_of
from mlilt.errors import DataError, NotFoundError

XM3600_URL = "https://google.github.io/crossmodal-3600/ (captions.zip + images.tgz)"
MULTI30K_URL = "https://github.com/multi30k/dataset (data/task1) + the Flickr30k images"
XTD10_URL = "https://github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10 (XTD10/) + COCO 2014 train images"
COCO_URL = "https://cocodataset.org (annotations/captions_*.json + images)"
PUBLIC_SET_NAMES = {"xm3600": "XM3600", "multi30k": "Multi30K", "xtd10": "XTD10", "coco": "COCO captions"}
# CLDR code -> the set's own code where they differ.
_XM3600_CODES = {"qu": "quz"}
_XTD10_CODES = {"ja": "jp"}


def _local(path: str | Path, name: str, where: str) -> Path:
    """``path`` as a local path; a Hub name or URL (or a missing path) fails with how to get a local copy."""
    text = str(path)
    local = Path(text)
    if local.exists():
        return local
    kind = "a URL" if text.startswith(("http://", "https://")) else "not a local path"
    raise NotFoundError(
        f"{name}: {text!r} is {kind}. mlilt reads {name} only from a local copy (nothing is downloaded here): "
        f"get it from {where} where you have a network, then pass the local folder or file."
    )


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def load_xm3600(path: str | Path, lang: str, images: str | Path | None = None) -> list[CaptionRecord]:
    """XM3600 captions of one language (every caption primary; split ``test``).

    Args:
        path: The folder holding ``captions.jsonl`` (and ``images/``), or the ``captions.jsonl`` file.
        lang: A CLDR code or the set's locale (``sw``; ``qu`` or ``quz``).
        images: The pictures' folder, if not ``images/`` beside ``captions.jsonl``.
    """
    path = _local(path, "XM3600", XM3600_URL)
    file = path / "captions.jsonl" if path.is_dir() else path
    folder = Path(images) if images else file.parent / "images"
    locale, records, seen = _XM3600_CODES.get(lang, lang), [], set()
    for number, line in enumerate(_lines(file), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if "image/key" not in row:
            raise DataError(f"{file}, line {number}: no 'image/key'; is this XM3600's captions.jsonl?")
        seen.update(k for k, v in row.items() if isinstance(v, dict) and "caption" in v)
        key = row["image/key"]
        for caption in (row.get(locale) or {}).get("caption", []):
            records.append(
                CaptionRecord(
                    image=str((folder / f"{key}.jpg").resolve()),
                    caption=caption,
                    image_id=f"xm3600-{key}",
                    split="test",
                    lang=lang,
                    primary=True,
                )
            )
    if not records:
        raise DataError(f"XM3600 at {file} has no captions in {locale!r}; locales there: {sorted(seen)}")
    return records


def _multi30k_split(name: str) -> str:
    if name in ("train", "val"):
        return name
    if name.startswith("test"):
        return "test"
    raise DataError(f"Multi30K split {name!r}: expected train, val or test_* (e.g. test_2016_flickr)")


def load_multi30k(
    root: str | Path,
    lang: str,
    images: str | Path | None = None,
    splits: tuple[str, ...] = ("train", "val", "test_2016_flickr"),
) -> list[CaptionRecord]:
    """Multi30K task 1: one caption per picture and language, in the set's own splits.

    Args:
        root: The ``data/task1`` folder (``raw/`` or the caption files directly, and ``image_splits/``).
        lang: ``en``, ``de``, ``fr`` or ``cs``.
        images: The Flickr30k pictures' folder (default ``<root>/images``).
        splits: Split files to read; ``test_*`` become ``test``.
    """
    root = _local(root, "Multi30K", MULTI30K_URL)
    folder = Path(images) if images else root / "images"
    records = []
    for split in splits:
        names = _lines(root / "image_splits" / f"{split}.txt")
        candidates = [d / f"{split}.{lang}{gz}" for d in (root / "raw", root) for gz in ("", ".gz")]
        text_file = next((c for c in candidates if c.is_file()), None)
        if text_file is None:
            raise NotFoundError(f"Multi30K: no {split}.{lang} (or .gz) in {root}/raw or {root}")
        captions = _lines(text_file)
        if len(captions) != len(names):
            raise DataError(f"{text_file} has {len(captions)} lines but image_splits/{split}.txt {len(names)}")
        for name, caption in zip(names, captions):
            records.append(
                CaptionRecord(
                    image=str((folder / name).resolve()),
                    caption=caption.strip(),
                    image_id=f"flickr30k-{Path(name).stem}",
                    split=_multi30k_split(split),
                    lang=lang,
                )
            )
    return records


def load_xtd10(root: str | Path, lang: str, images: str | Path | None = None) -> list[CaptionRecord]:
    """XTD10: 1,000 COCO pictures with one caption each per language (split ``test``).

    Args:
        root: The folder with ``test_image_names.txt`` and ``test_1kcaptions_<lang>.txt``.
        lang: ``de en es fr it ko pl ru tr zh`` or ``ja`` (the repository's ``jp``).
        images: The COCO 2014 pictures' folder (default ``<root>/images``).
    """
    root = _local(root, "XTD10", XTD10_URL)
    folder = Path(images) if images else root / "images"
    names = [n.strip() for n in _lines(root / "test_image_names.txt") if n.strip()]
    text_file = root / f"test_1kcaptions_{_XTD10_CODES.get(lang, lang)}.txt"
    if not text_file.is_file():
        found = sorted(p.stem.removeprefix("test_1kcaptions_") for p in root.glob("test_1kcaptions_*.txt"))
        raise NotFoundError(f"XTD10: no {text_file.name} in {root}; languages there: {found}")
    captions = [c for c in _lines(text_file) if c.strip()]
    if len(captions) != len(names):
        raise DataError(f"{text_file} has {len(captions)} captions but test_image_names.txt {len(names)} pictures")
    return [
        CaptionRecord(
            image=str((folder / name).resolve()),
            caption=caption.strip(),
            image_id=f"coco-{Path(name).stem}",
            split="test",
            lang=lang,
        )
        for name, caption in zip(names, captions)
    ]


def load_coco_captions(
    path: str | Path, images: str | Path | None = None, lang: str | None = "en", split: str | None = None
) -> list[CaptionRecord]:
    """A COCO-style caption JSON (``images`` + ``annotations``); every caption is primary.

    Args:
        path: The JSON file (e.g. ``captions_val2014.json``).
        images: The pictures' folder (default: the JSON's folder).
        lang: Language of the captions.
        split: Split of every picture; default: an image's own ``split`` field (Karpathy's ``restval`` counts as
            train), else the hash split by picture.
    """
    path = _local(path, "COCO captions", COCO_URL)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not {"images", "annotations"} <= set(data):
        raise DataError(f"{path}: a COCO caption file needs 'images' and 'annotations' lists")
    folder = Path(images) if images else path.parent
    pictures = {img["id"]: img for img in data["images"]}
    records = []
    for ann in data["annotations"]:
        img = pictures.get(ann["image_id"])
        if img is None:
            raise DataError(f"{path}: annotation {ann.get('id')} names image_id {ann['image_id']} not in 'images'")
        image_id = f"coco-{img['id']}"
        own = {"restval": "train"}.get(img.get("split"), img.get("split"))
        chosen = split or (own if own in SPLITS else split_of(image_id))
        records.append(
            CaptionRecord(
                image=str((folder / img["file_name"]).resolve()),
                caption=ann["caption"].strip(),
                image_id=image_id,
                split=chosen,
                lang=lang,
            )
        )
    return records
