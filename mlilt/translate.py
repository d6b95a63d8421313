"""``mlilt translate``: machine-translated captions for a language that has few, with a resumable cache.

English captions are translated with a MarianMT (``Helsinki-NLP/opus-mt-en-XX``) or NLLB-200 model; the result is a
caption file ``mlilt adapt --data`` reads, every record marked ``source: machine-translated:<model id>``. Every
translation is stored in a SQLite cache keyed by (model, language pair, source text) as soon as its batch is done, so a
rerun or a crash loses nothing. With ``--reverse-model`` each caption is translated back and scored with round-trip
chrF (Popović 2015, via sacrebleu); captions below ``--min-chrf`` are flagged.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from sacrebleu.metrics import CHRF
from tqdm.auto import tqdm
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from mlilt.cache import cache_dir
from mlilt.data.sources import load_records
from mlilt.errors import ConfigError, DataError, NotFoundError
from mlilt.languages import load_language

NLLB_DEFAULT = "facebook/nllb-200-distilled-600M"


class TranslationCache:
    """Translations on disk (SQLite), committed after every batch.

    Args:
        path: The database file (default: ``translations.sqlite`` in the mlilt cache).
    """

    def __init__(self, path: Path | None = None):
        if path is None:
            path = cache_dir("translations") / "translations.sqlite"
        self.path = Path(path)
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS translations (model TEXT, pair TEXT, text TEXT, "
            "translation TEXT, PRIMARY KEY (model, pair, text))"
        )
        self._db.commit()

    def get(self, model: str, pair: str, texts: list[str]) -> dict[str, str]:
        found = {}
        for start in range(0, len(texts), 500):
            chunk = texts[start : start + 500]
            rows = self._db.execute(
                f"SELECT text, translation FROM translations WHERE model = ? AND pair = ? AND text IN "
                f"({','.join('?' * len(chunk))})",
                [model, pair, *chunk],
            )
            found.update(rows.fetchall())
        return found

    def put(self, model: str, pair: str, translations: dict[str, str]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?)",
            [(model, pair, text, out) for text, out in translations.items()],
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class Translator:
    """A seq2seq translation model (MarianMT, NLLB, ...) loaded with transformers.

    Args:
        model_id: A Hub id or a local folder (``save_pretrained`` layout).
        source: NLLB only: the source FLORES-200 code (``eng_Latn``).
        target: NLLB only: the target FLORES-200 code (``swh_Latn``).
        max_new_tokens: Longest translation, in tokens.
        num_beams: Beam size.
    """

    def __init__(
        self,
        model_id: str,
        source: str | None = None,
        target: str | None = None,
        max_new_tokens: int = 128,
        num_beams: int = 4,
    ):
        self.model_id, self.max_new_tokens, self.num_beams = model_id, max_new_tokens, num_beams
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_id)
            self.model = AutoModelForSeq2SeqLM.from_pretrained(model_id).eval()
        except (OSError, ValueError) as err:
            raise NotFoundError(
                f"could not load translation model {model_id!r} ({type(err).__name__}: {str(err)[:300]}). "
                "If you are offline, download it where you have a network (e.g. `hf download "
                f"{model_id} --local-dir DIR`, or from_pretrained(...).save_pretrained(DIR) for model and tokenizer) "
                "and pass --model DIR."
            ) from err
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)
        self.is_nllb = self.model.config.model_type == "m2m_100" or "nllb" in model_id.lower()
        self.forced_bos = None
        if self.is_nllb:
            if not source or not target:
                raise ConfigError(f"{model_id} is an NLLB model: it needs FLORES-200 source and target codes")
            self.tokenizer.src_lang = source
            self.forced_bos = self.tokenizer.convert_tokens_to_ids(target)

    def __call__(self, texts: list[str]) -> list[str]:
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        extra = {"forced_bos_token_id": self.forced_bos} if self.forced_bos is not None else {}
        with torch.inference_mode():
            out = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams, **extra)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


def model_key(model_id: str) -> str:
    """Cache key of a model: the Hub id, or a local folder's path plus a fingerprint of its files."""
    path = Path(model_id)
    if not path.is_dir():
        return model_id
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file())
    return f"{path.resolve()}@{hashlib.sha256(repr(files).encode()).hexdigest()[:16]}"


def translate_texts(
    texts: list[str],
    translator_factory,
    key: str,
    pair: str,
    cache: TranslationCache,
    batch_size: int = 16,
    progress: bool = True,
) -> tuple[dict[str, str], int]:
    """Translations of the distinct ``texts``: cached ones read, the others translated in batches and cached.

    Args:
        texts: Source texts (duplicates are translated once).
        translator_factory: Called with no argument to load the model, only if something is not cached.
        key: The model's cache key (``model_key``).
        pair: The language pair, e.g. ``en->sw``.
        cache: Where translations are read from and written to after every batch.
        batch_size: Texts per model call.
        progress: Show a progress bar.

    Returns:
        Source text -> translation, and how many texts came from the cache.
    """
    unique = list(dict.fromkeys(texts))
    done = cache.get(key, pair, unique)
    hits = len(done)
    todo = sorted((t for t in unique if t not in done), key=len)  # similar lengths batch with little padding
    if todo:
        translate = translator_factory()
        with tqdm(total=len(todo), desc=f"Translating {pair}", unit="caption", disable=not progress) as bar:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                batch = dict(zip(chunk, translate(chunk)))
                cache.put(key, pair, batch)
                done.update(batch)
                bar.update(len(chunk))
    return done, hits


@dataclass
class TranslationSummary:
    """What one ``translate_file`` call did."""

    records: int
    distinct_captions: int
    cache_hits: int
    translated: int
    flagged: int | None
    mean_chrf: float | None
    out: str


def default_model(lang: str) -> str:
    """The language's opus-mt model from ``languages/``, else NLLB-200 (distilled 600M)."""
    language = load_language(lang)
    if language.opus_mt:
        return language.opus_mt
    if language.nllb:
        return NLLB_DEFAULT
    raise ConfigError(
        f"languages/{language.code}.yaml names no opus-mt model and no NLLB code: pass --model "
        "(a local folder or a Hub id of a model that translates into this language)"
    )


def _nllb_code(lang: str) -> str | None:
    try:
        return load_language(lang).nllb
    except ConfigError:
        return None


def translate_file(
    data: str,
    lang: str,
    out: Path,
    model: str | None = None,
    source_lang: str = "en",
    reverse_model: str | None = None,
    min_chrf: float = 30.0,
    batch_size: int = 16,
    max_new_tokens: int = 128,
    num_beams: int = 4,
    cache_path: Path | None = None,
    progress: bool = True,
) -> TranslationSummary:
    """Translate the ``source_lang`` captions of a caption source into ``lang`` and write a caption file.

    Image paths are written absolute (``load_caption_source`` has already resolved them against the input file).

    Returns:
        A summary: counts, cache hits, flagged captions and mean round-trip chrF (with ``reverse_model``).
    """
    model = model or default_model(lang)
    records = [r for r in load_records(data, None) if r.lang in (None, source_lang)]
    if not records:
        raise DataError(f"{data} has no captions in {source_lang!r} (records need lang: {source_lang} or no lang)")
    src_code, tgt_code = _nllb_code(source_lang) or "eng_Latn", _nllb_code(lang)
    cache = TranslationCache(cache_path)
    try:
        key = model_key(model)
        forward, hits = translate_texts(
            [r.caption for r in records],
            lambda: Translator(model, src_code, tgt_code, max_new_tokens, num_beams),
            key,
            f"{source_lang}->{lang}",
            cache,
            batch_size,
            progress,
        )
        chrf = {}
        if reverse_model:
            back, _ = translate_texts(
                list(forward.values()),
                lambda: Translator(reverse_model, tgt_code, src_code, max_new_tokens, num_beams),
                model_key(reverse_model),
                f"{lang}->{source_lang}",
                cache,
                batch_size,
                progress,
            )
            metric = CHRF()
            chrf = {src: round(metric.sentence_score(back[tgt], [src]).score, 2) for src, tgt in forward.items()}
    finally:
        cache.close()
    lines = []
    for r in records:
        row = {
            "image": r.image,
            "caption": forward[r.caption],
            "lang": lang,
            "image_id": r.image_id,
            "split": r.split,
            "source": f"machine-translated:{model}",
            "primary": r.primary,
            "source_caption": r.caption,
        }
        if reverse_model:
            row |= {"roundtrip_chrf": chrf[r.caption], "flagged": chrf[r.caption] < min_chrf}
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    os.replace(tmp, out)
    flagged = sum(chrf[r.caption] < min_chrf for r in records) if reverse_model else None
    mean = round(sum(chrf.values()) / len(chrf), 2) if chrf else None
    return TranslationSummary(len(records), len(forward), hits, len(forward) - hits, flagged, mean, str(out))
