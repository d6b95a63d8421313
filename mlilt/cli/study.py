"""``mlilt study``: every tuning method, cross-lingual transfer and scarce data on one language."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlilt.cli.options import add_threads
from mlilt.errors import ConfigError
from mlilt.evaluation.study import run_study
from mlilt.tuning.registry import method_names

PASSED_ON = ("config", "epochs", "data", "text", "vision", "vision_weights", "batch_size", "threads")  # to every run


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The paper's comparison on one language in one command: every tuning method on the same data, recipe and "
        "budget; adapters trained on another language and tested on this one; and a scarce-data learning curve. "
        "Each run is its own process (wall time and peak memory per run). Writes study.json, study.md and charts; "
        "an interrupted study continues where it stopped when run again."
    )
    p.epilog = (
        "example:\n  mlilt study --lang sw\n  mlilt study --lang yo --methods frozen,layernorm,adapters --epochs 4"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--lang", required=True, help="target language (e.g. sw)")
    p.add_argument("--out", type=Path, help="study folder (default runs/study-<lang>)")
    p.add_argument("--methods", default=",".join(method_names("text")), help="comma-separated methods to compare")
    p.add_argument(
        "--fractions",
        default="0.1,0.25,0.5",
        help="shares of the training captions for the learning curve ('' to skip)",
    )
    p.add_argument("--transfer-from", default="en", help="source language for the transfer run ('' to skip)")
    p.add_argument("--config", help="recipe for every run (default: configs/default.yaml)")
    p.add_argument("--epochs", type=int, help="epochs of every run")
    p.add_argument("--data", help="caption data (default emoji-cldr)")
    p.add_argument("--text", help="text tower of every run")
    p.add_argument("--vision", help="vision tower of every run")
    p.add_argument("--vision-weights", help="local weights file of the vision tower")
    p.add_argument("--batch-size", type=int, help="pairs per step")
    add_threads(p)


def run(args: argparse.Namespace) -> int:
    passthrough = []
    for flag in PASSED_ON:
        value = getattr(args, flag)
        if value is not None:
            passthrough += [f"--{flag.replace('_', '-')}", str(value)]
    methods = tuple(m for m in args.methods.split(",") if m)
    unknown = set(methods) - set(method_names("text"))
    if unknown:
        raise ConfigError(f"unknown methods {sorted(unknown)}; choose from {', '.join(method_names('text'))}")
    try:
        fractions = tuple(float(f) for f in args.fractions.split(",") if f)
    except ValueError:
        raise ConfigError(f"--fractions {args.fractions!r}: expected numbers such as 0.1,0.25,0.5") from None
    out = args.out or Path("runs") / f"study-{args.lang}"
    run_study(args.lang, out, methods, fractions, args.transfer_from or None, passthrough, args.data or "emoji-cldr")
    print((out / "study.md").read_text(encoding="utf-8"))
    print(f"study folder: {out}")
    return 0
