"""``mlilt eval``: a run on several languages, beside its untouched base (:mod:`mlilt.evaluation.languages`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlilt.cli.options import add_threads, use_threads
from mlilt.evaluation.languages import evaluate_run
from mlilt.evaluation.metrics import PROTOCOLS
from mlilt.evaluation.report import write_report
from mlilt.hub.adapter_files import read_adapter_config


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Evaluate a run folder on one or many languages, and its untouched base (the run's reference-frozen/ model: "
        "same towers, heads only) beside it. Writes report.json, report.md and charts (recall per language, "
        "training curves, example queries) into the run folder; report.md states the exact protocol."
    )
    p.epilog = "example:\n  mlilt eval runs/sw-adapters --lang sw,en,yo,am"
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("run", type=Path, help="run folder written by mlilt adapt (or any adapter folder)")
    p.add_argument("--lang", default=None, help="comma-separated languages (default: the run's language and en)")
    p.add_argument("--data", default="emoji-cldr", help="emoji-cldr, or a caption file / folder with a test split")
    p.add_argument("--split", default="test", choices=["val", "test"], help="which split to evaluate")
    p.add_argument(
        "--protocol",
        choices=list(PROTOCOLS),
        default="strict",
        help="how tied scores count in report.md: strict (against the model; default) or clip-benchmark (as "
        "published multilingual numbers: CLIP_benchmark's topk order). report.json holds both.",
    )
    p.add_argument("--out", type=Path, help="where to write the report (default: the run folder)")
    add_threads(p)


def run(args: argparse.Namespace) -> int:
    use_threads(args)
    trained_lang = read_adapter_config(args.run).get("lang")
    langs = args.lang.split(",") if args.lang else [x for x in dict.fromkeys([trained_lang, "en"]) if x]
    results = evaluate_run(args.run, langs, args.data, args.split, args.protocol)
    paths = write_report(results, args.out or args.run, run=args.run)
    print("report: " + ", ".join(str(p) for p in paths))
    return 0
