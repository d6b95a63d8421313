"""Check every record before training: bad ones are counted by kind, shown, and dropped; never silently.

Kinds: ``missing_image``, ``unreadable_image`` (corrupt or not a picture), ``empty_caption``,
``overlong_caption`` (more characters than the limit), ``duplicate_pair`` (same picture, caption and language:
the same word for the same picture in two languages, "taxi" say, is two records, not a duplicate).
If more than ``max_bad_fraction`` of the records are bad, the run stops with the report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mlilt.data.records import CaptionRecord
from mlilt.errors import DataError

EXAMPLES_PER_KIND = 3


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


def _image_problem(path: str) -> str | None:
    if not Path(path).exists():
        return "missing_image"
    try:
        with Image.open(path) as image:
            image.load()  # decodes fully: a truncated file fails here, not in the middle of training
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "unreadable_image"
    return None


def validate_records(
    records: list[CaptionRecord], max_caption_chars: int = 1000, max_bad_fraction: float = 0.05
) -> tuple[list[CaptionRecord], ValidationReport]:
    """Return the good records and a report; raise :class:`BadDataError` if too many are bad."""
    report = ValidationReport(total=len(records), kept=0)
    image_problems: dict[str, str | None] = {}
    seen: set[tuple[str, str | None, str]] = set()
    good = []
    for line, record in enumerate(records, start=1):
        if record.image not in image_problems:
            image_problems[record.image] = _image_problem(record.image)
        caption = record.caption.strip() if isinstance(record.caption, str) else ""
        kind = image_problems[record.image]
        if kind is None and not caption:
            kind = "empty_caption"
        elif kind is None and len(caption) > max_caption_chars:
            kind = "overlong_caption"
        elif kind is None and (record.image_id, record.lang, caption) in seen:
            kind = "duplicate_pair"
        if kind:
            report.bad[kind] += 1
            if len(report.examples[kind]) < EXAMPLES_PER_KIND:
                report.examples[kind].append(f"record {line}: {record.image} | {caption[:60]!r}")
            continue
        seen.add((record.image_id, record.lang, caption))
        good.append(record if caption == record.caption else _with_caption(record, caption))
    report.kept = len(good)
    if report.total == 0:
        raise BadDataError("no records to train on")
    if report.bad_fraction > max_bad_fraction:
        raise BadDataError(
            f"{report.bad_fraction:.1%} of the records are bad (limit {max_bad_fraction:.0%}):\n{report}\n"
            "Fix the data, or raise the limit with --max-bad-fraction if dropping them is acceptable."
        )
    return good, report


def _with_caption(record: CaptionRecord, caption: str) -> CaptionRecord:
    return replace(record, caption=caption)
