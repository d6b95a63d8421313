"""Where caption records come from: one table of data sources and one dispatch, :func:`load_records`.

A data spec (``--data``) names a source:

- a registered name: ``emoji-cldr`` (built in);
- ``KIND:PATH`` for a registered kind that reads a local copy: ``xm3600:``, ``multi30k:``, ``xtd10:``, ``coco:``;
- a ``.jsonl`` / ``.csv`` caption file, or a folder holding ``captions.jsonl`` / ``captions.csv``;
- anything else: a Hugging Face ``datasets`` name or ``save_to_disk`` folder.

A new source is one :func:`register_source` call (as open_clip's ``get_dataset_fn``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlilt.data import public_sets
from mlilt.data.emoji_cldr import load_emoji_cldr
from mlilt.data.files import is_caption_path, load_caption_path
from mlilt.data.hf_datasets import load_hf_dataset
from mlilt.data.records import CaptionRecord
from mlilt.errors import ConfigError

Loader = Callable[[str, "str | None"], list[CaptionRecord]]  # (location, language) -> records


@dataclass(frozen=True)
class Source:
    """One kind of caption data.

    Attributes:
        name: ``emoji-cldr``, or the ``KIND`` of ``KIND:PATH``.
        load: Reads the records of a location (empty for a source without one) in a language.
        help: What it is and where to get it, for ``--help``.
        located: Whether it needs a location (``KIND:PATH``) or is named alone (``emoji-cldr``).
        per_language: Whether it reads one language at a time (extra training languages are read one by one);
            otherwise a location holds every language it has, read once.
    """

    name: str
    load: Loader
    help: str
    located: bool = True
    per_language: bool = True


_SOURCES: dict[str, Source] = {}
CAPTION_FILES = Source(
    "files",
    lambda where, lang: load_caption_path(where, lang),
    "a JSONL/CSV caption file or a folder holding one",
    per_language=False,
)
DATASETS = Source(
    "datasets",
    lambda where, lang: load_hf_dataset(where, lang),
    "a Hugging Face datasets name or save_to_disk folder",
    per_language=False,
)


def register_source(source: Source) -> Source:
    """Make ``source`` available to ``--data``, ``mlilt eval`` and :func:`load_records`."""
    if source.name in _SOURCES:
        raise ValueError(f"a data source named {source.name!r} is already registered")
    _SOURCES[source.name] = source
    return source


def source_names() -> list[str]:
    return list(_SOURCES)


def describe_sources() -> str:
    """One line for ``--help``: every way of naming data."""
    named = [f"{s.name}:PATH" if s.located else s.name for s in _SOURCES.values()]
    return f"{', '.join(named)}; {CAPTION_FILES.help}; or {DATASETS.help}"


def resolve(spec: str) -> tuple[Source, str]:
    """The source a data spec names and its location."""
    kind, colon, where = spec.partition(":")
    source = _SOURCES.get(kind if colon else spec)
    if source is not None and source.located == bool(colon):
        if source.located and not where:
            raise ConfigError(f"--data {spec!r}: give the local copy's path after {kind}: ({source.help})")
        return source, where
    if is_caption_path(Path(spec)):
        return CAPTION_FILES, spec
    return DATASETS, spec


def load_records(spec: str, lang: str | None = None, extra_langs: Sequence[str] = ()) -> list[CaptionRecord]:
    """The caption records a data spec names, in ``lang`` (and ``extra_langs`` where the source reads per language)."""
    source, where = resolve(spec)
    langs = [lang, *[x for x in extra_langs if x != lang]] if source.per_language else [lang]
    return [record for language in langs for record in source.load(where, language)]


register_source(
    Source(
        "emoji-cldr",
        lambda _, lang: load_emoji_cldr(lang),
        "the built-in Emoji-CLDR pictures with native speakers' CLDR names",
        located=False,
    )
)
register_source(Source("xm3600", lambda where, lang: public_sets.load_xm3600(where, lang), public_sets.XM3600_URL))
register_source(
    Source("multi30k", lambda where, lang: public_sets.load_multi30k(where, lang), public_sets.MULTI30K_URL)
)
register_source(Source("xtd10", lambda where, lang: public_sets.load_xtd10(where, lang), public_sets.XTD10_URL))
register_source(
    Source(
        "coco",
        lambda where, lang: public_sets.load_coco_captions(where, lang=lang or "en"),
        public_sets.COCO_URL,
        per_language=False,
    )
)
