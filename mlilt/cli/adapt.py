"""``mlilt adapt``: train a language adapter and evaluate it (:func:`mlilt.adapt.run_adapt`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlilt.adapt import run_adapt
from mlilt.cli.options import add_threads, use_threads
from mlilt.config import list_recipes, load_run_config
from mlilt.data.sources import describe_sources
from mlilt.run_folder import resolve_out_dir, resumed_config
from mlilt.training.distributed import init_distributed
from mlilt.tuning.registry import method_names

EPILOG = """\
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

# Flag -> the recipe setting it overrides.
OVERRIDES = {
    "lang": "data.lang",
    "data": "data.source",
    "extra_langs": "data.extra_langs",
    "extra_data": "data.extra_sources",
    "max_bad_fraction": "data.max_bad_fraction",
    "max_captions": "data.max_train_captions",
    "max_images": "data.max_train_images",
    "text": "model.text.name",
    "method": "model.text.method",
    "vision": "model.vision.name",
    "vision_weights": "model.vision.weights",
    "vision_method": "model.vision.method",
    "epochs": "train.epochs",
    "head_warmup_epochs": "train.head_warmup_epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "max_pixels": "model.vision.max_pixels",
    "skip_nonfinite_steps": "train.skip_nonfinite_steps",
    "max_steps": "train.max_steps",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Turn a frozen vision tower and a multilingual text encoder into an image-text model for one language: "
        "only the tuning method's parameters, the projection heads and the temperature are trained."
    )
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
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
        choices=method_names("text"),
        help="what to train in the text tower (default from the recipe: adapters)",
    )
    p.add_argument(
        "--vision-method",
        choices=method_names("vision"),
        help="what to train in the vision tower (default frozen: features are computed once, cached)",
    )
    p.add_argument("--data", help=describe_sources())
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
    p.add_argument("--max-steps", type=int, help="stop the method after this many steps (for very large caption sets)")
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
    p.add_argument("--max-pixels", type=int, help="refuse pictures larger than this many pixels (default 40,000,000)")
    p.add_argument(
        "--skip-nonfinite-steps",
        action="store_true",
        default=None,
        help="skip (and count) steps whose loss or gradient is NaN or infinite instead of stopping the run",
    )
    p.add_argument("--out", type=Path, help="run folder (default runs/<lang>-<method>)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--no-reference", action="store_true", help="skip the frozen (heads-only) reference run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads(p)


def run(args: argparse.Namespace) -> int:
    values = vars(args) | {"extra_langs": args.extra_langs.split(",") if args.extra_langs else None}
    overrides = {setting: values[flag] for flag, setting in OVERRIDES.items()}
    cfg = load_run_config(args.config, overrides)
    init_distributed()
    use_threads(args, cfg.train.num_threads)
    out_dir = resolve_out_dir(args.out, cfg, args.resume)
    if args.resume:
        cfg = resumed_config(out_dir, cfg, [k for k, v in overrides.items() if v is not None])
    try:
        run_adapt(cfg, out_dir, resume=args.resume, reference=not args.no_reference, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\nmlilt: interrupted; continue with the same command plus --resume --out {out_dir}", file=sys.stderr)
        return 130
    return 0
