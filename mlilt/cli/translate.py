"""``mlilt translate``: machine-translated captions with a resumable cache (:mod:`mlilt.translate`)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from mlilt.translate import NLLB_DEFAULT, translate_file


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Translate the captions of a caption file into --lang and write a caption file that `mlilt adapt --data` "
        "reads. Default model: the language's opus-mt model from languages/, else NLLB-200."
    )
    p.add_argument("--lang", required=True, help="target language (CLDR code, e.g. sw, yo, am)")
    p.add_argument("--data", required=True, help="caption file (JSONL/CSV), folder or datasets name")
    p.add_argument(
        "--model",
        help=f"translation model: Hub id or local folder (e.g. Helsinki-NLP/opus-mt-en-sw, {NLLB_DEFAULT})",
    )
    p.add_argument("--source-lang", default="en", help="language of the captions to translate (default en)")
    p.add_argument("--reverse-model", help="model translating back, for round-trip chrF quality scores")
    p.add_argument("--min-chrf", type=float, default=30.0, help="flag captions whose round-trip chrF is below this")
    p.add_argument("--out", type=Path, help="output caption file (default <data stem>.<lang>.jsonl beside --data)")
    p.add_argument("--batch-size", type=int, default=16, help="captions per model call")
    p.add_argument("--max-new-tokens", type=int, default=128, help="longest translation in tokens")
    p.add_argument("--beams", type=int, default=4, help="beam size")
    p.add_argument("--cache", type=Path, help="translation cache file (default: the mlilt cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    data = Path(args.data)
    default = data.with_name(f"{data.stem}.{args.lang}.jsonl") if data.suffix else data / f"captions.{args.lang}.jsonl"
    out = args.out or default
    summary = translate_file(
        args.data,
        args.lang,
        out,
        args.model,
        args.source_lang,
        args.reverse_model,
        args.min_chrf,
        args.batch_size,
        args.max_new_tokens,
        args.beams,
        args.cache,
        progress=not args.quiet,
    )
    print(json.dumps(asdict(summary), indent=1))
    print(
        f"{summary.records} captions -> {summary.out} ({summary.cache_hits} of {summary.distinct_captions} distinct "
        f"from the cache, {summary.translated} translated)"
    )
    if summary.flagged is not None:
        print(
            f"round-trip chrF: mean {summary.mean_chrf}; {summary.flagged} caption(s) below {args.min_chrf} "
            "flagged (flagged: true in the file)"
        )
    return 0
