"""Data sources: one table, one dispatch (``--data``), and a new source is one registration."""

from __future__ import annotations

import json

import pytest

from mlilt.data import sources
from mlilt.data.records import CaptionRecord
from mlilt.data.sources import Source, describe_sources, load_records, register_source, resolve
from mlilt.errors import ConfigError

from helpers import draw_picture


@pytest.mark.parametrize(
    "spec, kind, where",
    [
        ("emoji-cldr", "emoji-cldr", ""),
        ("xm3600:/data/xm3600", "xm3600", "/data/xm3600"),
        ("multi30k:/data/task1", "multi30k", "/data/task1"),
        ("xtd10:/data/XTD10", "xtd10", "/data/XTD10"),
        ("coco:/data/captions_val2014.json", "coco", "/data/captions_val2014.json"),
        ("captions.jsonl", "files", "captions.jsonl"),
        ("captions.csv", "files", "captions.csv"),
        ("someone/captions", "datasets", "someone/captions"),
    ],
)
def test_every_spec_goes_to_one_source(spec, kind, where):
    source, location = resolve(spec)
    assert (source.name, location) == (kind, where)


def test_a_folder_is_a_caption_folder_unless_it_is_a_saved_dataset(tmp_path):
    assert resolve(str(tmp_path))[0].name == "files"
    (tmp_path / "dataset_info.json").write_text("{}")
    assert resolve(str(tmp_path))[0].name == "datasets"


def test_a_located_source_needs_its_path():
    with pytest.raises(ConfigError, match="give the local copy's path after xm3600:"):
        resolve("xm3600:")


def test_a_new_source_is_one_registration(tmp_path, monkeypatch):
    """A registered ``KIND:PATH`` source is read by the same dispatch ``--data`` and ``mlilt eval`` use."""
    draw_picture("red", "circle").save(tmp_path / "red.png")
    (tmp_path / "names.json").write_text(json.dumps({"red.png": {"sw": "duara jekundu", "en": "red circle"}}))

    def load_names(where: str, lang: str | None) -> list[CaptionRecord]:
        names = json.loads((tmp_path / where / "names.json").read_text())
        return [
            CaptionRecord(str(tmp_path / where / image), by_lang[lang], image, "test", lang)
            for image, by_lang in names.items()
        ]

    monkeypatch.setattr(sources, "_SOURCES", dict(sources._SOURCES))  # registrations end with the test
    register_source(Source("names", load_names, "a names.json beside its pictures"))
    assert "names:PATH" in describe_sources()
    records = load_records(f"names:{tmp_path}", "sw", extra_langs=["en"])
    assert [(r.caption, r.lang) for r in records] == [("duara jekundu", "sw"), ("red circle", "en")]
    with pytest.raises(ValueError, match="already registered"):
        register_source(Source("names", load_names, "twice"))
