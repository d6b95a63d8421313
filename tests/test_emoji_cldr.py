"""Emoji-CLDR: Noto Color Emoji pictures with CLDR native-speaker names (built once in the default cache)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mlilt.data import emoji_cldr
from mlilt.data.emoji_cldr import (
    available_languages,
    build_emoji_cldr,
    emoji_english_names,
    load_emoji_cldr,
    load_manifest,
)
from mlilt.data.records import split_of

pytestmark = pytest.mark.skipif(
    not (emoji_cldr.FONT_PATH.is_file() and (emoji_cldr.CLDR_DIR / "annotations" / "en.xml").is_file()),
    reason="needs Debian packages fonts-noto-color-emoji and unicode-cldr-core",
)


@pytest.fixture(scope="module")
def manifest() -> dict:
    return load_manifest()


def test_build_counts(manifest):
    root = build_emoji_cldr()  # complete already: a no-op
    counts = manifest["counts"]
    assert 1400 <= counts["kept"] == len(manifest["pictures"]) <= 1700
    assert counts["kept"] + sum(counts["skipped"].values()) == counts["english_names"]
    assert counts["skipped"]["blank"] > 300  # punctuation, arrows, symbols
    ids = [p["image_id"] for p in manifest["pictures"]]
    assert len(set(ids)) == len(ids)
    assert all((root / p["file"]).is_file() for p in manifest["pictures"])
    assert len(manifest["font"]["sha256"]) == 64
    assert emoji_english_names()["1f415"] == "dog"


def test_splits_deterministic_and_shared_across_languages(manifest):
    pictures = manifest["pictures"]
    assert all(p["split"] == split_of(p["image_id"]) for p in pictures)
    share = {s: sum(p["split"] == s for p in pictures) / len(pictures) for s in ("train", "val", "test")}
    assert 0.65 < share["train"] < 0.75 and 0.06 < share["val"] < 0.14 and 0.15 < share["test"] < 0.25
    by_id = {p["image_id"]: p["split"] for p in pictures}
    for lang in ("sw", "en"):
        records = load_emoji_cldr(lang)
        assert all(r.split == by_id[r.image_id] for r in records)
        train = {r.image_id for r in records if r.split == "train"}
        test = {r.image_id for r in records if r.split == "test"}
        assert train and test and not train & test


def test_swahili_names_and_keywords():
    records = load_emoji_cldr("sw")
    names = [r for r in records if r.primary]
    keywords = [r for r in records if not r.primary]
    assert len(names) > 1500 and len(keywords) > 1500
    assert len({r.image_id for r in names}) == len(names) == available_languages()["sw"]
    assert all(r.lang == "sw" and r.source == "human" for r in records)
    name_of = {r.image_id: r.caption.casefold() for r in names}
    assert all(r.caption.casefold() != name_of[r.image_id] for r in keywords)
    pairs = [(r.image_id, r.caption.casefold()) for r in keywords]
    assert len(set(pairs)) == len(pairs)
    assert "mbwa" in {r.caption for r in names if r.image_id == "1f415"}
    assert load_emoji_cldr("sw", names_only=True) == names


def test_available_languages():
    langs = available_languages()
    assert len(langs) > 100
    for lang in ("sw", "am", "yo", "ha", "zu", "en", "yue", "sr_Latn", "zh_Hant"):
        assert langs[lang] > 1000, lang
    assert "root" not in langs and "sw_KE" not in langs and "en_GB" not in langs
    assert max(langs.values()) == load_manifest()["counts"]["kept"]


@pytest.mark.parametrize("lang", ["swahili", "sww", "Swahili"])
def test_unknown_language_suggests(lang):
    with pytest.raises(ValueError) as info:
        load_emoji_cldr(lang)
    message = str(info.value)
    assert "sw (Swahili)" in message and "Adding a language" in message


def test_rendered_image_is_rgb_and_not_blank(manifest):
    root = build_emoji_cldr()
    dog = next(p for p in manifest["pictures"] if p["image_id"] == "1f415")
    with Image.open(root / dog["file"]) as image:
        assert image.mode == "RGB" and image.size == tuple(manifest["image_size"])
        pixels = np.asarray(image)
    assert (pixels < 250).any(axis=-1).mean() > 0.1
    assert (pixels[0, 0] == 255).all()  # white background


@pytest.mark.slow  # renders every picture twice
def test_interrupted_build_is_redone(tmp_path, monkeypatch):
    monkeypatch.setenv("MLILT_CACHE", str(tmp_path))
    root = build_emoji_cldr()
    assert root.is_relative_to(tmp_path)
    first = json.loads((root / "manifest.json").read_text("utf-8"))
    (root / "manifest.json").unlink()  # as if the build had stopped before its last step
    (root / ".images.partial").mkdir()  # and left a half-rendered temp folder
    assert build_emoji_cldr() == root
    assert json.loads((root / "manifest.json").read_text("utf-8")) == first
    assert not (root / ".images.partial").exists()
    assert len(list((root / "images").glob("*.png"))) == first["counts"]["kept"]
