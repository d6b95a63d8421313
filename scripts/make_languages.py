"""Generate ``languages/<code>.yaml``: one file per language that Emoji-CLDR covers.

Run from the repository root (needs the Debian package ``unicode-cldr-core`` and the mlilt venv)::

    .venv/bin/python scripts/make_languages.py            # writes languages/*.yaml
    .venv/bin/python scripts/make_languages.py --check    # exits 1 if a file would change

Where each field comes from:

- ``code``: the CLDR annotation file stem (``available_languages()`` in ``mlilt/data/emoji_cldr.py``).
- ``name`` / ``native_name``: CLDR ``common/main/en.xml`` and ``common/main/<code>.xml`` (``<language>``; a script
  variant such as ``sr_Latn`` without its own entry is written "<language> (<script>)").
- ``script``: the script subtag of the code, else CLDR ``supplemental/likelySubtags.xml``.
- ``iso639_1``: the code's language subtag when it has two letters, else null.
- ``iso639_3``: the code's language subtag when it has three letters, else CLDR
  ``supplemental/supplementalMetadata.xml`` ``<languageAlias reason="overlong">`` (3-letter code -> 2-letter code).
- ``emoji_cldr_names``: pictures with a short name in the language (``available_languages()``).
- ``xlmr``, ``mbert``, ``opus_mt``, ``nllb``, ``eval_sets``, ``resource_level``: the curated tables below, each
  citing its source. An entry the author was unsure of is left out (null / false) and listed in ``NOTES``.

``resource_level`` (how much unlabelled text the multilingual encoders saw for the language):
  ``high``  : in XLM-R's CC-100 with >= 10 GiB of text (Conneau et al. 2020, Table 6),
  ``mid``   : in CC-100 with 1-10 GiB,
  ``low``   : in CC-100 with < 1 GiB, or in neither CC-100 (XLM-R) nor mBERT's 104 Wikipedias,
  ``unknown``: in mBERT's Wikipedias but not in CC-100 (size not tabulated here), or a CC-100 size the author could
  not confirm near a tier boundary (``UNSURE_SIZE``).
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlilt.data.emoji_cldr import CLDR_DIR, available_languages  # noqa: E402

OUT_DIR = ROOT / "languages"

# --- XLM-R: the 100 CC-100 languages XLM-R was pretrained on ---------------------------------------------------------
# Source: Conneau et al., "Unsupervised Cross-lingual Representation Learning at Scale", ACL 2020, Table 6 (also the
# language table in fairseq examples/xlmr/README.md). Values: CC-100 size in GiB as recalled from Table 6 (used only
# for the resource tier; see UNSURE_SIZE). Mapped to CLDR codes: Filipino -> fil, Chinese (Traditional) -> zh_Hant,
# Hindi Romanized -> hi_Latn. Languages of the table that CLDR annotations lack (eo, fy, la, mg, om, sa, su, yi and the
# other romanized sets) are omitted.
XLMR_CC100_GIB: dict[str, float] = {
    "af": 1.3,
    "am": 0.8,
    "ar": 28.0,
    "as": 0.1,
    "az": 6.5,
    "be": 4.3,
    "bg": 57.5,
    "bn": 8.4,
    "br": 0.1,
    "bs": 0.1,
    "ca": 10.1,
    "cs": 16.3,
    "cy": 0.8,
    "da": 45.6,
    "de": 66.6,
    "el": 46.9,
    "en": 300.8,
    "es": 53.3,
    "et": 6.1,
    "eu": 2.0,
    "fa": 111.6,
    "fi": 54.3,
    "fil": 3.1,
    "fr": 56.8,
    "ga": 0.5,
    "gd": 0.1,
    "gl": 2.9,
    "gu": 1.9,
    "ha": 0.3,
    "he": 31.6,
    "hi": 20.2,
    "hi_Latn": 0.5,
    "hr": 20.5,
    "hu": 58.4,
    "hy": 5.5,
    "id": 148.3,
    "is": 3.2,
    "it": 30.2,
    "ja": 69.3,
    "jv": 0.2,
    "ka": 9.1,
    "kk": 6.4,
    "km": 1.5,
    "kn": 3.3,
    "ko": 54.2,
    "ku": 0.4,
    "ky": 1.2,
    "lo": 0.6,
    "lt": 13.7,
    "lv": 8.8,
    "mk": 4.8,
    "ml": 7.6,
    "mn": 3.0,
    "mr": 2.8,
    "ms": 8.5,
    "my": 0.4,
    "ne": 3.8,
    "nl": 29.3,
    "no": 49.0,
    "or": 0.6,
    "pa": 0.8,
    "pl": 44.6,
    "ps": 0.7,
    "pt": 49.1,
    "ro": 61.4,
    "ru": 278.0,
    "sd": 0.4,
    "si": 3.6,
    "sk": 23.2,
    "sl": 10.3,
    "so": 0.4,
    "sq": 5.4,
    "sr": 9.1,
    "sv": 12.1,
    "sw": 1.6,
    "ta": 12.2,
    "te": 4.7,
    "th": 71.7,
    "tr": 20.9,
    "ug": 0.4,
    "uk": 84.6,
    "ur": 5.7,
    "uz": 0.7,
    "vi": 137.3,
    "xh": 0.1,
    "zh": 46.9,
    "zh_Hant": 16.6,
}
# CC-100 sizes recalled with too little certainty where the tier boundary matters: tier "unknown".
UNSURE_SIZE = {"af", "ca", "sl", "ka", "sr", "lt", "sv", "ky", "km", "am", "cy", "pa", "ta"}

# --- mBERT: bert-base-multilingual-cased's 104 Wikipedia languages ---------------------------------------------------
# Source: google-research/bert multilingual.md, "List of Languages" (+ Thai and Mongolian in the cased model).
# Mapped to CLDR codes: Tagalog -> fil, Norwegian (Bokmal) -> no, Norwegian (Nynorsk) -> nn,
# Western Punjabi -> pa_Arab, Chinese (Traditional) -> zh_Hant. Listed languages without CLDR annotations are omitted.
MBERT = {
    "af",
    "sq",
    "ar",
    "hy",
    "ast",
    "az",
    "eu",
    "be",
    "bn",
    "bs",
    "br",
    "bg",
    "my",
    "ca",
    "ceb",
    "zh",
    "zh_Hant",
    "hr",
    "cs",
    "da",
    "nl",
    "en",
    "et",
    "fi",
    "fr",
    "gl",
    "ka",
    "de",
    "el",
    "gu",
    "he",
    "hi",
    "hu",
    "is",
    "id",
    "ga",
    "it",
    "ja",
    "jv",
    "kn",
    "kk",
    "ky",
    "ko",
    "lv",
    "lt",
    "lb",
    "mk",
    "ms",
    "ml",
    "mr",
    "ne",
    "no",
    "nn",
    "fa",
    "pl",
    "pt",
    "pa",
    "pa_Arab",
    "ro",
    "ru",
    "sr",
    "sk",
    "sl",
    "es",
    "sw",
    "sv",
    "fil",
    "tg",
    "ta",
    "te",
    "tr",
    "uk",
    "ur",
    "uz",
    "vi",
    "cy",
    "yo",
    "th",
    "mn",
}

# --- opus-mt: Helsinki-NLP/opus-mt-en-XX models (MarianMT) -----------------------------------------------------------
# Source: the Hugging Face Hub's Helsinki-NLP organisation (model ids opus-mt-en-<code>), as listed in the
# Helsinki-NLP/Opus-MT model tables. CLDR code -> target code of the model id. Only models the author is confident
# exist; others (e.g. en-ja: only "en-jap" (Bible Japanese) exists; en-yo, en-am, en-zu, en-ti: unconfirmed) are null.
OPUS_MT = {
    "af": "af",
    "ar": "ar",
    "az": "az",
    "bg": "bg",
    "ca": "ca",
    "ceb": "ceb",
    "cs": "cs",
    "cy": "cy",
    "da": "da",
    "de": "de",
    "el": "el",
    "es": "es",
    "et": "et",
    "eu": "eu",
    "fi": "fi",
    "fil": "tl",
    "fr": "fr",
    "ga": "ga",
    "gl": "gl",
    "ha": "ha",
    "he": "he",
    "hi": "hi",
    "hu": "hu",
    "hy": "hy",
    "id": "id",
    "ig": "ig",
    "is": "is",
    "it": "it",
    "mk": "mk",
    "ml": "ml",
    "mr": "mr",
    "mt": "mt",
    "nl": "nl",
    "ro": "ro",
    "ru": "ru",
    "rw": "rw",
    "sk": "sk",
    "sq": "sq",
    "sv": "sv",
    "sw": "sw",
    "to": "to",
    "uk": "uk",
    "ur": "ur",
    "vi": "vi",
    "xh": "xh",
    "zh": "zh",
}

# --- NLLB-200 / FLORES-200 codes -------------------------------------------------------------------------------------
# Source: NLLB Team, "No Language Left Behind", 2022, Table 1 / FLORES-200 README; checked here against
# transformers' tokenization_nllb.FAIRSEQ_LANGUAGE_CODES. Null (not in NLLB-200, or the match is doubtful): br, ccp,
# chr, dsb, hsb, ia, kl, kok, pa_Arab (Shahmukhi; NLLB has no pnb), pcm, qu (NLLB has only Ayacucho quy; CLDR qu is
# not that variety), rm, sr_Latn (NLLB has srp_Cyrl only), hi_Latn, to, yue_Hans (NLLB has yue_Hant only).
NLLB = {
    "af": "afr_Latn",
    "am": "amh_Ethi",
    "ar": "arb_Arab",
    "as": "asm_Beng",
    "ast": "ast_Latn",
    "az": "azj_Latn",
    "be": "bel_Cyrl",
    "bg": "bul_Cyrl",
    "bn": "ben_Beng",
    "bs": "bos_Latn",
    "ca": "cat_Latn",
    "ceb": "ceb_Latn",
    "ckb": "ckb_Arab",
    "cs": "ces_Latn",
    "cy": "cym_Latn",
    "da": "dan_Latn",
    "de": "deu_Latn",
    "el": "ell_Grek",
    "en": "eng_Latn",
    "es": "spa_Latn",
    "et": "est_Latn",
    "eu": "eus_Latn",
    "fa": "pes_Arab",
    "fi": "fin_Latn",
    "fil": "tgl_Latn",
    "fo": "fao_Latn",
    "fr": "fra_Latn",
    "ga": "gle_Latn",
    "gd": "gla_Latn",
    "gl": "glg_Latn",
    "gu": "guj_Gujr",
    "ha": "hau_Latn",
    "he": "heb_Hebr",
    "hi": "hin_Deva",
    "hr": "hrv_Latn",
    "hu": "hun_Latn",
    "hy": "hye_Armn",
    "id": "ind_Latn",
    "ig": "ibo_Latn",
    "is": "isl_Latn",
    "it": "ita_Latn",
    "ja": "jpn_Jpan",
    "jv": "jav_Latn",
    "ka": "kat_Geor",
    "kab": "kab_Latn",
    "kk": "kaz_Cyrl",
    "km": "khm_Khmr",
    "kn": "kan_Knda",
    "ko": "kor_Hang",
    "ku": "kmr_Latn",
    "ky": "kir_Cyrl",
    "lb": "ltz_Latn",
    "lo": "lao_Laoo",
    "lt": "lit_Latn",
    "lv": "lvs_Latn",
    "mi": "mri_Latn",
    "mk": "mkd_Cyrl",
    "ml": "mal_Mlym",
    "mn": "khk_Cyrl",
    "mni": "mni_Beng",
    "mr": "mar_Deva",
    "ms": "zsm_Latn",
    "mt": "mlt_Latn",
    "my": "mya_Mymr",
    "ne": "npi_Deva",
    "nl": "nld_Latn",
    "nn": "nno_Latn",
    "no": "nob_Latn",
    "or": "ory_Orya",
    "pa": "pan_Guru",
    "pl": "pol_Latn",
    "ps": "pbt_Arab",
    "pt": "por_Latn",
    "ro": "ron_Latn",
    "ru": "rus_Cyrl",
    "rw": "kin_Latn",
    "sc": "srd_Latn",
    "sd": "snd_Arab",
    "si": "sin_Sinh",
    "sk": "slk_Latn",
    "sl": "slv_Latn",
    "so": "som_Latn",
    "sq": "als_Latn",
    "sr": "srp_Cyrl",
    "sv": "swe_Latn",
    "sw": "swh_Latn",
    "ta": "tam_Taml",
    "te": "tel_Telu",
    "tg": "tgk_Cyrl",
    "th": "tha_Thai",
    "ti": "tir_Ethi",
    "tk": "tuk_Latn",
    "tr": "tur_Latn",
    "ug": "uig_Arab",
    "uk": "ukr_Cyrl",
    "ur": "urd_Arab",
    "uz": "uzn_Latn",
    "vi": "vie_Latn",
    "wo": "wol_Latn",
    "xh": "xho_Latn",
    "yo": "yor_Latn",
    "yue": "yue_Hant",
    "zh": "zho_Hans",
    "zh_Hant": "zho_Hant",
    "zu": "zul_Latn",
}

# --- Public evaluation sets ------------------------------------------------------------------------------------------
# XM3600: Thapliyal et al., "Crossmodal-3600", EMNLP 2022; the 36 locales of google/crossmodal-3600 captions.jsonl.
# Its "quz" (Cusco Quechua) is CLDR "qu" (CLDR aliases quz -> qu).
XM3600 = {
    "ar",
    "bn",
    "cs",
    "da",
    "de",
    "el",
    "en",
    "es",
    "fa",
    "fi",
    "fil",
    "fr",
    "he",
    "hi",
    "hr",
    "hu",
    "id",
    "it",
    "ja",
    "ko",
    "mi",
    "nl",
    "no",
    "pl",
    "pt",
    "qu",
    "ro",
    "ru",
    "sv",
    "sw",
    "te",
    "th",
    "tr",
    "uk",
    "vi",
    "zh",
}
# Multi30K: Elliott et al. 2016/2017, Barrault et al. 2018 (github.com/multi30k/dataset, data/task1: en, de, fr, cs).
MULTI30K = {"en", "de", "fr", "cs"}
# XTD10: Aggarwal & Kale 2020 (github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10: test_1kcaptions_<lang>.txt);
# Japanese ("jp", from STAIR Captions) was added to the same repository later.
XTD10 = {"de", "en", "es", "fr", "it", "ko", "pl", "ru", "tr", "zh", "ja"}

# Caveats written into the files.
NOTES = {
    "sr_Latn": "XLM-R/mBERT flags are those of Serbian; the share of Latin-script text in their corpora is unknown.",
    "hi_Latn": "XLM-R's CC-100 has a separate 'Hindi Romanized' set; mBERT's Hindi is Devanagari only (false here).",
    "qu": "XM3600's Quechua is Cusco Quechua (quz); NLLB-200 has only Ayacucho Quechua (quy), so nllb is null.",
    "pa_Arab": "mBERT's 'Western Punjabi' Wikipedia is Shahmukhi (Arabic script).",
    "no": "mBERT: Norwegian (Bokmal). NLLB: nob_Latn.",
    "yue_Hans": "NLLB-200 has Cantonese only in Traditional script (yue_Hant).",
}


def _xml(path: Path) -> ET.Element | None:
    return ET.parse(path).getroot() if path.is_file() else None


def _names(root: ET.Element | None, tag: str) -> dict[str, str]:
    if root is None:
        return {}
    return {n.get("type"): n.text for n in root.iter(tag) if n.get("alt") is None and n.text and n.text != "↑↑↑"}


def _parent_locales() -> dict[str, str]:
    root = _xml(CLDR_DIR / "supplemental" / "supplementalData.xml")
    return {loc: n.get("parent") for n in root.iter("parentLocale") for loc in n.get("locales", "").split()}


def _locale_chain(locale: str) -> list[str]:
    """``locale`` and its CLDR parents (explicit ``parentLocale`` first, else truncation), without ``root``."""
    parents, chain = _parent_locales(), []
    while locale and locale != "root":
        chain.append(locale)
        locale = parents.get(locale) or (locale.rsplit("_", 1)[0] if "_" in locale else "")
    return chain


def display_name(code: str, locale: str) -> str | None:
    """The name of language ``code`` in ``locale``, from CLDR ``main/<locale>.xml`` and its parent locales."""
    languages: dict[str, str] = {}
    scripts: dict[str, str] = {}
    for name in reversed(_locale_chain(locale)):  # parents first, the locale's own entries override
        root = _xml(CLDR_DIR / "main" / f"{name}.xml")
        languages |= _names(root, "language")
        scripts |= _names(root, "script")
    if code in languages:
        return languages[code]
    base, _, script = code.partition("_")
    if base not in languages:
        return None
    return f"{languages[base]} ({scripts.get(script, script)})" if script else languages[base]


def likely_scripts() -> dict[str, str]:
    root = _xml(CLDR_DIR / "supplemental" / "likelySubtags.xml")
    return {n.get("from"): n.get("to").split("_")[1] for n in root.iter("likelySubtag") if "_" in n.get("to", "")}


def overlong_aliases() -> dict[str, str]:
    """2-letter code -> ISO 639-3 (3-letter) code, from CLDR's ``overlong`` language aliases."""
    root = _xml(CLDR_DIR / "supplemental" / "supplementalMetadata.xml")
    found: dict[str, str] = {}
    for node in root.iter("languageAlias"):
        alias, target = node.get("type", ""), node.get("replacement", "")
        # "mol" (Moldavian) is a deprecated alias of ro; "ron" is the ISO 639-3 code.
        if node.get("reason") == "overlong" and len(alias) == 3 and len(target) == 2 and alias != "mol":
            found.setdefault(target, alias)
    return found


def resource_level(code: str) -> str:
    code = {"sr_Latn": "sr"}.get(code, code)  # the same language in another script: same corpus entry
    if code in XLMR_CC100_GIB:
        if code in UNSURE_SIZE:
            return "unknown"
        gib = XLMR_CC100_GIB[code]
        return "high" if gib >= 10 else "mid" if gib >= 1 else "low"
    return "unknown" if code in MBERT else "low"


def build() -> dict[str, dict]:
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    bad = {c: v for c, v in NLLB.items() if v not in FAIRSEQ_LANGUAGE_CODES}
    if bad:
        raise SystemExit(f"NLLB codes not in transformers' FAIRSEQ_LANGUAGE_CODES: {bad}")
    counts, scripts, iso3 = available_languages(), likely_scripts(), overlong_aliases()
    out = {}
    for code in sorted(counts):
        base, _, script = code.partition("_")
        eval_sets = ["emoji-cldr"] + [
            name for name, langs in (("xm3600", XM3600), ("multi30k", MULTI30K), ("xtd10", XTD10)) if code in langs
        ]
        out[code] = {
            "code": code,
            "iso639_1": base if len(base) == 2 else None,
            "iso639_3": base if len(base) == 3 else iso3.get(base),
            "name": display_name(code, "en"),
            "native_name": display_name(code, code),
            "script": script or scripts.get(base),
            "xlmr": code in XLMR_CC100_GIB or code == "sr_Latn",
            "mbert": code in MBERT or code == "sr_Latn",
            "resource_level": resource_level(code),
            "emoji_cldr_names": counts[code],
            "opus_mt": f"Helsinki-NLP/opus-mt-en-{OPUS_MT[code]}" if code in OPUS_MT else None,
            "nllb": NLLB.get(code),
            "eval_sets": eval_sets,
            "notes": NOTES.get(code),
        }
    return out


HEADER = "# Generated by scripts/make_languages.py from Unicode CLDR and curated tables (sources cited there).\n"


def render(entry: dict) -> str:
    return HEADER + yaml.safe_dump(entry, allow_unicode=True, sort_keys=False, width=119)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report files that would change; write nothing")
    args = parser.parse_args(argv)
    entries = build()
    OUT_DIR.mkdir(exist_ok=True)
    changed = [
        code
        for code, entry in entries.items()
        if not (OUT_DIR / f"{code}.yaml").is_file() or (OUT_DIR / f"{code}.yaml").read_text("utf-8") != render(entry)
    ]
    stale = sorted(p.stem for p in OUT_DIR.glob("*.yaml") if p.stem not in entries)
    if args.check:
        print(f"{len(changed)} to change: {changed}; {len(stale)} stale: {stale}")
        return 1 if changed or stale else 0
    for code in changed:
        (OUT_DIR / f"{code}.yaml").write_text(render(entries[code]), encoding="utf-8")
    fields = ("iso639_3", "name", "native_name", "script")
    missing = {f: [c for c, e in entries.items() if e[f] is None] for f in fields}
    print(f"wrote {len(changed)} of {len(entries)} files in {OUT_DIR}; stale (not removed): {stale or 'none'}")
    print(f"null fields: {missing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
