"""Published retrieval numbers a run can be compared with, and how each public set is built to compare with them.

The numbers are open_clip's multilingual retrieval results (made with LAION's CLIP_benchmark), kept in
``published_retrieval.csv`` beside this module with their source (a fixed commit of open_clip's
``docs/openclip_multilingual_retrieval_results.csv``), converted to mlilt's names and to percent:
CLIP_benchmark's ``image_retrieval`` is mlilt's ``text_to_image`` and ``text_retrieval`` its
``image_to_text``. They are for open_clip's models, not mlilt's towers: they say where the field stands on
the same pictures and captions under the same protocol.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, field
from importlib.resources import files

SOURCE = (
    "https://github.com/mlfoundations/open_clip/blob/9a3e7d0f199e4b554b6d2e3be7fa2e83062d8c8c/docs/"
    "openclip_multilingual_retrieval_results.csv"
)
METRICS = [f"{d}_R@{k}" for d in ("text_to_image", "image_to_text") for k in (1, 5, 10)]


@dataclass(frozen=True)
class ComparableSet:
    """How CLIP_benchmark builds a public set, and the codes its published table uses.

    Attributes:
        first_caption_only: CLIP_benchmark keeps only each picture's first caption.
        description: What the comparable numbers were computed on.
        codes: mlilt / CLDR language code -> the published table's code, where they differ.
    """

    first_caption_only: bool
    description: str
    codes: dict[str, str] = field(default_factory=dict)


COMPARABLE_SETS = {
    "xm3600": ComparableSet(
        True, "XM3600 as CLIP_benchmark's crossmodal3600: 3,600 pictures, the first caption of each", {"qu": "quz"}
    ),
    "xtd10": ComparableSet(
        False,
        "XTD10 as CLIP_benchmark's multilingual_mscoco_captions: 1,000 COCO pictures, one caption each",
        {"ja": "jp"},
    ),
    "multi30k": ComparableSet(
        False, "Multi30K test_2016_flickr: 1,000 pictures, one caption each (open_clip publishes no Multi30K numbers)"
    ),
}


@functools.cache
def _rows() -> list[dict]:
    with (files("mlilt.evaluation") / "published_retrieval.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    return [{**row, **{m: float(row[m]) for m in METRICS if row.get(m)}} for row in rows]


def published_results(source: str, lang: str) -> dict:
    """The published numbers for one public set and language (empty rows when there are none), with the source."""
    code = COMPARABLE_SETS[source].codes.get(lang, lang)
    rows = [
        {k: v for k, v in row.items() if k != "dataset" and v != ""}
        for row in _rows()
        if row["dataset"] == source and row["lang"] == code
    ]
    return {"source": SOURCE, "rows": rows}
