"""The ``mlilt`` command line: small subcommands that delegate to the library."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from mlilt.config import Method, list_recipes

ADAPT_EPILOG = """\
examples:
  mlilt adapt --lang sw                       Swahili adapter on the built-in offline default
  mlilt adapt --lang yo --method layernorm    LayerNorm-only (under 1% of parameters)
  mlilt adapt --lang sw --data captions.jsonl your own pictures and captions
  mlilt adapt --lang sw --text xlm-roberta-base --vision deit_base_patch16_224   (needs the Hub)
  torchrun --nproc-per-node 2 -m mlilt.cli adapt --lang sw   data-parallel, negatives gathered

The built-in default: text tower multilingual-e5-small and vision tower EfficientNet-Lite0 (both
shipped inside PyPI packages, converted once into the cache), Emoji-CLDR pictures with captions
written by native speakers (CLDR), a fixed 70/10/20 split by picture. Caches live in
$MLILT_CACHE (default ~/.cache/mlilt).
"""


def _add_adapt(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "adapt",
        help="train a language adapter (LilT) and evaluate it",
        description="Turn a frozen vision tower and a multilingual text encoder into an image-text model for "
        "one language: only the tuning method's parameters, the projection heads and the temperature are trained.",
        epilog=ADAPT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--lang", required=True, help="language code of the captions (CLDR / ISO 639, e.g. sw, yo, am)")
    p.add_argument(
        "--config",
        default="default",
        help=f"recipe name in configs/ or a YAML path (known: {', '.join(list_recipes())})",
    )
    p.add_argument("--text", help="text tower: Hub id, local folder, or offline:multilingual-e5-small")
    p.add_argument("--vision", help="vision tower: timm name, or offline:efficientnet-lite0")
    p.add_argument("--vision-weights", help="local weights file for the vision tower (instead of the Hub)")
    p.add_argument(
        "--method",
        choices=[m.value for m in Method],
        help="what to train in the text tower (default from the recipe: adapters)",
    )
    p.add_argument(
        "--vision-method",
        choices=["frozen", "layernorm", "adapters"],
        help="what to train in the vision tower (default frozen: features are computed once, cached)",
    )
    p.add_argument(
        "--data",
        help="emoji-cldr (built in), a JSONL/CSV caption file, a folder, a datasets name or save_to_disk path, "
        "or a public set from a local copy: xm3600:PATH, multi30k:PATH, xtd10:PATH, coco:PATH",
    )
    p.add_argument("--extra-langs", help="comma-separated languages whose captions are added to training")
    p.add_argument(
        "--extra-data",
        action="append",
        help="another caption file mixed into training, e.g. machine-translated captions from "
        "`mlilt translate` beside human ones (repeatable); the share of each source is reported",
    )
    p.add_argument("--max-captions", type=int, help="scarce data: train on at most N captions of the language")
    p.add_argument("--max-images", type=int, help="scarce data: train on the captions of at most N pictures")
    p.add_argument("--epochs", type=int, help="passes over the training captions")
    p.add_argument(
        "--head-warmup-epochs",
        type=int,
        help="epochs of heads-only training (towers frozen, seconds) before the method trains; 0 starts "
        "the method from random heads",
    )
    p.add_argument("--batch-size", type=int, help="pairs per step (summed over processes)")
    p.add_argument("--lr", type=float, help="peak learning rate of the tower's trainable parameters")
    p.add_argument("--seed", type=int, help="seed of initialisation, data order and dropout")
    p.add_argument("--max-bad-fraction", type=float, help="stop when more than this share of records is bad")
    p.add_argument("--out", type=Path, help="run folder (default runs/<lang>-<method>)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--no-reference", action="store_true", help="skip the frozen (heads-only) reference run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_adapt)


def _cmd_adapt(args: argparse.Namespace) -> int:
    from mlilt.adapt import init_distributed, resolve_out_dir, resumed_config, run_adapt
    from mlilt.config import load_run_config

    overrides = {
        "data.lang": args.lang,
        "data.source": args.data,
        "data.extra_langs": args.extra_langs.split(",") if args.extra_langs else None,
        "data.extra_sources": args.extra_data,
        "data.max_bad_fraction": args.max_bad_fraction,
        "data.max_train_captions": args.max_captions,
        "data.max_train_images": args.max_images,
        "model.text.name": args.text,
        "model.text.method": args.method,
        "model.vision.name": args.vision,
        "model.vision.weights": args.vision_weights,
        "model.vision.method": args.vision_method,
        "train.epochs": args.epochs,
        "train.head_warmup_epochs": args.head_warmup_epochs,
        "train.batch_size": args.batch_size,
        "train.lr": args.lr,
        "train.seed": args.seed,
    }
    cfg = load_run_config(args.config, overrides)
    if cfg.data.source == "emoji-cldr":
        from mlilt.data.emoji_cldr import load_emoji_cldr

        load_emoji_cldr(cfg.data.lang)  # unknown language: fails here, before any model is loaded
    init_distributed()
    out_dir = resolve_out_dir(args.out, cfg, args.resume)
    if args.resume:
        cfg = resumed_config(out_dir, cfg, [k for k, v in overrides.items() if v is not None])
    run_adapt(cfg, out_dir, resume=args.resume, reference=not args.no_reference, progress=not args.quiet)
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a run on several languages (retrieval both ways, zero-shot, knowledge kept)",
        description="Evaluate a run folder on one or many languages, and its untouched base (the run's "
        "reference-frozen/ model: same towers, heads only) beside it. Writes report.json, report.md and charts "
        "(recall per language, training curves, example queries) into the run folder; report.md states the "
        "exact protocol.",
        epilog="example:\n  mlilt eval runs/sw-adapters --lang sw,en,yo,am",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", type=Path, help="run folder written by mlilt adapt (or any adapter folder)")
    p.add_argument("--lang", default=None, help="comma-separated languages (default: the run's language and en)")
    p.add_argument("--data", default="emoji-cldr", help="emoji-cldr, or a caption file / folder with a test split")
    p.add_argument("--split", default="test", choices=["val", "test"], help="which split to evaluate")
    p.add_argument("--out", type=Path, help="where to write the report (default: the run folder)")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from mlilt.adapter_files import read_adapter_config
    from mlilt.evaluation import evaluate_run
    from mlilt.report import write_report

    trained_lang = read_adapter_config(args.run).get("lang")
    langs = args.lang.split(",") if args.lang else [x for x in dict.fromkeys([trained_lang, "en"]) if x]
    results = evaluate_run(args.run, langs, args.data, args.split)
    paths = write_report(results, args.out or args.run, run=args.run)
    print("report: " + ", ".join(str(p) for p in paths))
    return 0


STUDY_METHODS = tuple(m.value for m in Method)


def _add_study(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help="compare every tuning method, cross-lingual transfer and scarce data on one language",
        description="The paper's comparison on one language in one command: every tuning method on the same data, "
        "recipe and budget; adapters trained on another language and tested on this one; and a scarce-data "
        "learning curve. Each run is its own process (wall time and peak memory per run). Writes study.json, "
        "study.md and charts; an interrupted study continues where it stopped when run again.",
        epilog="example:\n  mlilt study --lang sw\n  mlilt study --lang yo --methods frozen,layernorm,adapters "
        "--epochs 4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--lang", required=True, help="target language (e.g. sw)")
    p.add_argument("--out", type=Path, help="study folder (default runs/study-<lang>)")
    p.add_argument("--methods", default=",".join(STUDY_METHODS), help="comma-separated methods to compare")
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
    p.set_defaults(func=_cmd_study)


def _cmd_study(args: argparse.Namespace) -> int:
    from mlilt.study import run_study

    passthrough = []
    for flag in ("config", "epochs", "data", "text", "vision", "vision_weights", "batch_size"):
        value = getattr(args, flag)
        if value is not None:
            passthrough += [f"--{flag.replace('_', '-')}", str(value)]
    methods = tuple(m for m in args.methods.split(",") if m)
    unknown = set(methods) - set(STUDY_METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {', '.join(STUDY_METHODS)}")
    fractions = tuple(float(f) for f in args.fractions.split(",") if f)
    out = args.out or Path("runs") / f"study-{args.lang}"
    run_study(args.lang, out, methods, fractions, args.transfer_from or None, passthrough, args.data or "emoji-cldr")
    print((out / "study.md").read_text(encoding="utf-8"))
    print(f"study folder: {out}")
    return 0


# Other subcommands live beside the library code they drive: each module listed here has a
# ``register(subparsers)`` function and imports its heavy dependencies only when its command runs.
COMMAND_MODULES: tuple[str, ...] = (
    "mlilt.demo",
    "mlilt.languages",
    "mlilt.translate",
    "mlilt.hub",
    "mlilt.export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlilt",
        description="mlilt: parameter-efficient CLIP-style image-text models for languages with little paired "
        "data (LilT, Khan & Fu, ICLR 2023).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_adapt(sub)
    _add_eval(sub)
    _add_study(sub)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as err:
        print(f"mlilt: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmlilt: interrupted; continue with --resume --out <run folder>", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
