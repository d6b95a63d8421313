"""Emoji-CLDR: real pictures with captions by native speakers in 100+ languages, fully offline.

Pictures: the emoji of Noto Color Emoji (Debian ``fonts-noto-color-emoji``, OFL-1.1), rendered once to PNG.
Captions: the Unicode CLDR annotations (Debian ``unicode-cldr-core``, Unicode License): per emoji and language a short
name (``type="tts"``, Swahili "mbwa" for 🐕), the primary (evaluation) caption, and keywords (training-only).

The pictures are the characters with an English short name in ``annotations/en.xml`` except ``skin_tone`` ones
(U+1F3FB..U+1F3FF; near-duplicates), ``blank`` ones (no glyph in the font: punctuation, arrows, symbols) and
``not_one_glyph`` ones: sequences the font cannot shape into one picture. The last test uses the shaped advance: with
Raqm (HarfBuzz) layout a supported ZWJ / keycap / flag sequence becomes one ligature glyph, all the font's glyphs share
one advance and ZWJ / VS16 have none, so a sequence drawn as several glyphs side by side measures 2+ advances.
``annotationsDerived/`` is not used. Splits are by picture (``split_of(image_id)``): the same in every language.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features
from tqdm import tqdm

from mlilt.cache import cache_dir
from mlilt.data.records import SPLITS, CaptionRecord, split_of
from mlilt.errors import ConfigError

DATASET_VERSION = "v1"
FONT_PATH = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
CLDR_DIR = Path("/usr/share/unicode/cldr/common")
FONT_SIZE = 109  # the font's only bitmap strike: glyphs are 136x128 pixels
IMAGE_SIZE = (136, 136)  # glyph cell padded to a square with white
_Y_OFFSET = 4
_INHERIT = "↑↑↑"  # CLDR's "inherit from parent locale" marker: treated as missing
_SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}


def dataset_dir() -> Path:
    """The folder the dataset is built into (in the mlilt cache)."""
    return cache_dir("datasets", f"emoji-cldr-{DATASET_VERSION}")


def _atomic_write_json(path: Path, data: object) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)


@functools.cache
def _annotations(lang: str) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """CLDR annotations of one locale file: emoji → (short name or None, keywords)."""
    names: dict[str, str] = {}
    keywords: dict[str, tuple[str, ...]] = {}
    for node in ET.parse(CLDR_DIR / "annotations" / f"{lang}.xml").getroot().iter("annotation"):
        cp, text = node.get("cp"), (node.text or "").strip()
        if not cp or not text or text == _INHERIT:
            continue
        if node.get("type") == "tts":
            names[cp] = text
        else:
            keywords[cp] = tuple(k.strip() for k in text.split("|") if k.strip() and k.strip() != _INHERIT)
    return {cp: (names.get(cp), keywords.get(cp, ())) for cp in names.keys() | keywords.keys()}


def _cldr_version() -> str | None:
    dtd = CLDR_DIR / "dtd" / "ldml.dtd"
    match = re.search(r'cldrVersion CDATA #FIXED "([^"]+)"', dtd.read_text("utf-8") if dtd.is_file() else "")
    return match.group(1) if match else None


def build_emoji_cldr(force: bool = False) -> Path:
    """Render the pictures and write ``manifest.json``, once; a no-op when the dataset is complete.

    The images are rendered into a temporary folder that is then renamed, and the manifest is written last (temp
    file + ``os.replace``), so an interrupted build has no manifest and is redone on the next call.

    Args:
        force: Rebuild even if the dataset is complete.

    Returns:
        The dataset folder (``images/``, ``manifest.json``).
    """
    root = dataset_dir()
    if (root / "manifest.json").is_file() and not force:
        return root
    print(f"mlilt: building the Emoji-CLDR dataset {DATASET_VERSION} in {root} (once, a few seconds)")
    raqm = features.check("raqm")
    if not raqm:
        warnings.warn("Pillow has no Raqm layout: emoji sequences (ZWJ, keycaps) cannot be shaped and are skipped")
    layout = ImageFont.Layout.RAQM if raqm else ImageFont.Layout.BASIC
    font = ImageFont.truetype(str(FONT_PATH), FONT_SIZE, layout_engine=layout)
    one_advance = font.getlength("\U0001f600")
    english_names = {cp: name for cp, (name, _) in _annotations("en").items() if name is not None}
    for leftover in root.glob(".images.*"):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp_images = Path(tempfile.mkdtemp(dir=root, prefix=".images."))
    pictures, skipped = [], Counter({"skin_tone": 0, "blank": 0, "not_one_glyph": 0})
    for emoji, name in tqdm(sorted(english_names.items()), desc="Rendering emoji", unit="pic"):
        if _SKIN_TONES.intersection(emoji):
            skipped["skin_tone"] += 1
            continue
        glyph = Image.new("RGBA", IMAGE_SIZE, (255, 255, 255, 0))
        ImageDraw.Draw(glyph).text((0, _Y_OFFSET), emoji, font=font, embedded_color=True)
        if glyph.getchannel("A").getbbox() is None:
            skipped["blank"] += 1
            continue
        if abs(font.getlength(emoji) - one_advance) > 0.5:
            skipped["not_one_glyph"] += 1
            continue
        image_id = "_".join(f"{ord(c):04x}" for c in emoji)  # CLDR drops U+FE0F
        rgb = Image.alpha_composite(Image.new("RGBA", IMAGE_SIZE, (255, 255, 255, 255)), glyph).convert("RGB")
        rgb.save(tmp_images / f"{image_id}.png")
        file, split = f"images/{image_id}.png", split_of(image_id)
        pictures.append({"image_id": image_id, "emoji": emoji, "english_name": name, "file": file, "split": split})
    if (root / "images").exists():
        shutil.rmtree(root / "images")
    os.replace(tmp_images, root / "images")
    (root / "languages.json").unlink(missing_ok=True)
    counts = {"english_names": len(english_names), "kept": len(pictures), "skipped": dict(skipped)}
    counts["splits"] = {s: sum(p["split"] == s for p in pictures) for s in SPLITS}
    font_sha = hashlib.sha256(FONT_PATH.read_bytes()).hexdigest()
    font_info = {"path": str(FONT_PATH), "sha256": font_sha, "size": FONT_SIZE, "layout": layout.name.lower()}
    cldr_info = {"path": str(CLDR_DIR / "annotations"), "version": _cldr_version(), "licence": "Unicode License"}
    manifest = {"dataset": "emoji-cldr", "version": DATASET_VERSION, "image_size": list(IMAGE_SIZE)}
    manifest |= {"font": font_info | {"licence": "OFL-1.1"}, "cldr": cldr_info, "counts": counts, "pictures": pictures}
    _atomic_write_json(root / "manifest.json", manifest)
    _manifest.cache_clear()
    return root


@functools.cache
def _manifest(root: str) -> dict:
    return json.loads((Path(root) / "manifest.json").read_text("utf-8"))


def load_manifest() -> dict:
    """The manifest of the built dataset (built first if needed)."""
    return _manifest(str(build_emoji_cldr()))


def _language_files() -> list[str]:
    """Base-language annotation files: no region subtag (``sw``, ``sr_Latn``; not ``sw_KE``, ``root``)."""
    stems = (p.stem for p in (CLDR_DIR / "annotations").glob("*.xml"))
    return sorted(s for s in stems if s != "root" and all(len(t) == 4 and t.isalpha() for t in s.split("_")[1:]))


def available_languages() -> dict[str, int]:
    """Language code (CLDR file stem) → number of pictures with a short name in it; languages with none left out.

    Cached as ``languages.json`` in the dataset folder (recomputed if the set of CLDR files changes).
    """
    path = build_emoji_cldr() / "languages.json"
    files = _language_files()
    if path.is_file():
        cached = json.loads(path.read_text("utf-8"))
        if cached.get("files") == files:
            return cached["counts"]
    kept = {p["emoji"] for p in load_manifest()["pictures"]}
    counts = {lang: sum(n is not None and cp in kept for cp, (n, _) in _annotations(lang).items()) for lang in files}
    counts = {lang: n for lang, n in counts.items() if n}
    _atomic_write_json(path, {"files": files, "counts": counts})
    return counts


@functools.lru_cache(maxsize=1)
def _language_names() -> dict[str, str]:
    """CLDR's English names of languages (``sw`` → ``Swahili``), for suggestions."""
    path = CLDR_DIR / "main" / "en.xml"
    root = ET.parse(path).getroot() if path.is_file() else ET.Element("ldml")
    return {n.get("type"): n.text for n in root.iter("language") if n.get("alt") is None and n.text}


def _unknown_language(lang: str, available: dict[str, int]) -> ConfigError:
    names = _language_names()
    by_name = {(names.get(c) or names.get(c.split("_")[0]) or c).lower(): c for c in available}
    close = difflib.get_close_matches(lang, list(available), n=5, cutoff=0.6)
    close += [by_name[n] for n in difflib.get_close_matches(lang.lower(), list(by_name), n=3, cutoff=0.75)]
    hints = ", ".join(f"{c} ({names.get(c) or names.get(c.split('_')[0], '?')})" for c in dict.fromkeys(close))
    return ConfigError(
        f"Emoji-CLDR has no language {lang!r} (codes are CLDR file stems such as 'am', 'yue', 'sr_Latn'). "
        f"Close matches: {hints or 'none'}. {len(available)} languages are available (see available_languages()).\n"
        "To add a language, see the README's 'Adding a language' section."
    )


def load_emoji_cldr(lang: str, names_only: bool = False) -> list[CaptionRecord]:
    """Caption records of one language: the short name (primary) and each distinct keyword (not primary).

    Args:
        lang: CLDR language code (file stem), e.g. ``sw``, ``am``, ``yo``, ``zh_Hant``.
        names_only: Only the short names (one record per picture).

    Returns:
        Records for every kept picture with a short name in ``lang``, ``source="human"``.

    Raises:
        ConfigError: ``lang`` is not an available language; the message suggests close matches.
    """
    available, lang = available_languages(), lang.replace("-", "_")
    if lang not in available:
        raise _unknown_language(lang, available)
    root, annotations = build_emoji_cldr(), _annotations(lang)
    records = []
    for pic in load_manifest()["pictures"]:
        name, keywords = annotations.get(pic["emoji"], (None, ()))
        if name is None:
            continue
        common = {"image": str(root / pic["file"]), "image_id": pic["image_id"], "split": pic["split"], "lang": lang}
        records.append(CaptionRecord(caption=name, primary=True, **common))
        if names_only:
            continue
        seen = {name.casefold()}
        for keyword in keywords:
            if keyword.casefold() not in seen:
                seen.add(keyword.casefold())
                records.append(CaptionRecord(caption=keyword, primary=False, **common))
    return records


def emoji_english_names() -> dict[str, str]:
    """Picture id → English CLDR short name, for reports."""
    return {p["image_id"]: p["english_name"] for p in load_manifest()["pictures"]}
