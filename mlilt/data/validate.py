"""Check every record before training: bad ones are counted by kind, shown, and dropped; never silently.

Kinds:

- ``download_failed``: a picture URL that could not be fetched as a picture (the reason was printed);
- ``missing_image``, ``unreadable_image`` (corrupt or not a picture), ``too_many_pixels`` (above the tower's
  ``max_pixels``, refused before it is decoded);
- ``image_id_conflict``: a picture file under an ``image_id`` another picture already has (two pictures would be
  merged into one and each one's captions trained against the other);
- ``empty_caption`` (nothing but spaces or invisible characters), ``caption_not_text`` (a list, an object,
  true/false or null where a caption belongs; numbers are read as their text), ``overlong_caption``;
- ``duplicate_pair`` (same picture, caption and language: the same word for the same picture in two
  languages, "taxi" say, is two records, not a duplicate).

Each picture is decoded once per run, or not at all when it is unchanged since a run checked it
(:mod:`mlilt.data.picture_checks`). If more than ``max_bad_fraction`` of the records are bad, the run stops with
the report. :func:`check_splits`
then makes sure the kept records can be trained and evaluated on, before anything is trained.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mlilt.cache import file_sha256
from mlilt.data.files import is_url
from mlilt.data.images import MAX_PIXELS
from mlilt.data.picture_checks import PictureChecks
from mlilt.data.records import SPLITS, CaptionRecord
from mlilt.errors import DataError

EXAMPLES_PER_KIND = 3
_INVISIBLE = ("Cc", "Cf", "Zs", "Zl", "Zp")  # control, format (zero-width), separators


class BadDataError(DataError):
    """Too many bad records to train on; the message holds the report."""


@dataclass
class ValidationReport:
    total: int
    kept: int
    bad: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def bad_fraction(self) -> float:
        return (self.total - self.kept) / max(self.total, 1)

    def __str__(self) -> str:
        lines = [f"{self.kept:,} of {self.total:,} records kept"]
        for kind, count in self.bad.most_common():
            lines.append(f"  {kind}: {count:,}  e.g. " + "; ".join(self.examples[kind]))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"total": self.total, "kept": self.kept, "bad": dict(self.bad), "examples": dict(self.examples)}


def _image_problem(path: str, max_pixels: int | None) -> str | None:
    if is_url(path):
        return "download_failed"
    if not Path(path).is_file():
        return "missing_image"
    try:
        with Image.open(path) as image:
            if max_pixels is not None and image.width * image.height > max_pixels:
                return "too_many_pixels"
            image.load()  # decodes fully: a truncated file fails here, not in the middle of training
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "unreadable_image"
    return None


def _caption_text(caption: object) -> str | None:
    """The caption as text (numbers as written), stripped; None when it is not text at all."""
    if isinstance(caption, bool) or not isinstance(caption, (str, int, float)):
        return None
    return str(caption).strip()


def _is_blank(caption: str) -> bool:
    return all(unicodedata.category(c) in _INVISIBLE for c in caption)


def validate_records(
    records: list[CaptionRecord],
    max_caption_chars: int = 1000,
    max_bad_fraction: float = 0.05,
    max_pixels: int | None = MAX_PIXELS,
    picture_checks: PictureChecks | None = None,
) -> tuple[list[CaptionRecord], ValidationReport]:
    """Return the good records and a report; raise :class:`BadDataError` if too many are bad.

    ``picture_checks``: where the pictures' checks are remembered (default: the cache's).
    """
    checks = picture_checks if picture_checks is not None else PictureChecks()
    try:
        return _validate(records, max_caption_chars, max_bad_fraction, max_pixels, checks)
    finally:
        checks.save()
        if picture_checks is None:
            checks.close()


def _validate(
    records: list[CaptionRecord],
    max_caption_chars: int,
    max_bad_fraction: float,
    max_pixels: int | None,
    checks: PictureChecks,
) -> tuple[list[CaptionRecord], ValidationReport]:
    report = ValidationReport(total=len(records), kept=0)
    image_problems: dict[str, str | None] = {}
    picture_of_id: dict[str, str] = {}  # image_id -> the picture file it names (the first one seen)
    seen: set[tuple[str, str | None, str]] = set()
    good = []
    for line, record in enumerate(records, start=1):
        if record.image not in image_problems:
            image_problems[record.image] = checks.problem(record.image, max_pixels, _image_problem)
        caption = _caption_text(record.caption)
        kind = image_problems[record.image]
        if kind is None and _conflicts(picture_of_id, record):
            kind = "image_id_conflict"
        elif kind is None and caption is None:
            kind = "caption_not_text"
        elif kind is None and _is_blank(caption):
            kind = "empty_caption"
        elif kind is None and len(caption) > max_caption_chars:
            kind = "overlong_caption"
        elif kind is None and (record.image_id, record.lang, caption) in seen:
            kind = "duplicate_pair"
        if kind:
            report.bad[kind] += 1
            if len(report.examples[kind]) < EXAMPLES_PER_KIND:
                shown = caption if caption is not None else record.caption
                report.examples[kind].append(f"record {line}: {record.image} | {str(shown)[:60]!r}")
            continue
        seen.add((record.image_id, record.lang, caption))
        good.append(record if caption == record.caption else replace(record, caption=caption))
    report.kept = len(good)
    if report.total == 0:
        raise BadDataError("no records to train on")
    if report.bad_fraction > max_bad_fraction:
        raise BadDataError(
            f"{report.bad_fraction:.1%} of the records are bad (limit {max_bad_fraction:.0%}):\n{report}\n"
            "Fix the data, or raise the limit with --max-bad-fraction if dropping them is acceptable."
        )
    return good, report


def _conflicts(picture_of_id: dict[str, str], record: CaptionRecord) -> bool:
    """Whether ``record`` names, under its ``image_id``, a different picture than an earlier record did.

    Two paths with the same bytes (a copy) are the same picture; the first picture seen keeps the id.
    """
    first = picture_of_id.setdefault(record.image_id, record.image)
    return first != record.image and file_sha256(first) != file_sha256(record.image)


def check_splits(records: list[CaptionRecord], lang: str, batch_size: int) -> dict[str, int]:
    """Make sure the records can be trained and evaluated on in ``lang`` before anything is trained.

    Training needs at least one batch of pairs; validation and test need at least one primary caption in
    ``lang`` (records without a language count as ``lang``).

    Returns:
        Records per split.

    Raises:
        DataError: What is missing, with the counts per split and what to do.
    """
    counts = {split: sum(r.split == split for r in records) for split in SPLITS}
    in_lang = {
        split: sum(r.split == split and r.primary and r.lang in (None, lang) for r in records) for split in SPLITS
    }
    problems = []
    if not any(r.lang in (None, lang) for r in records):
        found = sorted({str(r.lang) for r in records})
        problems.append(f"no record is in {lang!r} (languages found: {', '.join(found[:10])})")
    if counts["train"] < batch_size:
        problems.append(f"{counts['train']} training records, fewer than one batch of {batch_size}")
    for split in ("val", "test"):
        if not in_lang[split]:
            problems.append(f"no primary {split} caption in {lang!r}")
    if problems:
        raise DataError(
            f"this data cannot be trained and evaluated on: {'; '.join(problems)} (records per split: {counts}). "
            "Give records a 'split' of train, val or test, or leave it out for a split by picture (70/10/20); "
            "check --lang and --batch-size."
        )
    return counts
