"""Training epoch time with mlilt's frozen-feature cache against running the frozen vision tower on every step.

Both pipelines train the offline default (Emoji-CLDR Swahili, e5-small text tower tuned with ``--method``,
frozen EfficientNet-Lite0 vision tower, batch 128) with the real :func:`mlilt.train.training_step`, the
optimizer of :func:`mlilt.train.make_optimizer`, the learning-rate schedule of :func:`mlilt.train.train` and the
batches of :func:`mlilt.data.prepare.epoch_batches` (epoch 0). Only the picture side differs:

- ``cached``: :func:`mlilt.data.prepare.prepare` as ``mlilt adapt`` runs it: the frozen tower's features come from
  the on-disk cache (hits / misses reported; the one-time extraction of missing features is timed separately);
  a step reads rows of the feature table.
- ``per-step``: the same ``PreparedData`` with ``image_features={}``: :func:`mlilt.train.embed_batch` then opens
  every picture of the batch, preprocesses it and runs the frozen tower each step (mlilt's own path for a
  trained vision tower; how LilT and open_clip train). The tower's parameters have ``requires_grad=False`` and
  the pixels need no gradient, so autograd records nothing for it: no ``torch.no_grad`` is needed.
- ``cold`` (``--cold`` only): ``prepare`` into an empty temporary feature cache (``$MLILT_CACHE`` set after the
  towers and pictures are loaded), i.e. the one-time cost of filling the cache.

Each pipeline runs in its own process (separate peak RSS), one after the other, in one invocation, so the
ratio compares like with like. ``--steps N`` times the first N batches of the epoch in both pipelines and
extrapolates (median step x steps per epoch); the default times the full epoch (about 30 steps; the per-step
pipeline takes minutes on a 2-core CPU). Validation is not part of the timed epoch.

    python benchmarks/feature_cache.py                      # full epoch, both pipelines, adapters
    python benchmarks/feature_cache.py --steps 5 --cold --method lora --threads 2 --json /tmp/feature_cache.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

import mlilt.model
from mlilt.adapt import training_records
from mlilt.config import load_run_config
from mlilt.data.prepare import epoch_batches
from mlilt.data.validate import validate_records
from mlilt.features import CacheStats
from mlilt.model import assemble
from mlilt.towers.registry import build_text_tower, build_vision_tower
from mlilt.training.loop import make_optimizer, training_step
from mlilt.training.loss import ContrastiveLoss
from mlilt.training.schedule import set_learning_rates, view_for_step

from _common import machine_meta, peak_rss_mib, pick_device, warn_if_busy, write_json

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ("cached", "per-step")
TARGET_SPEEDUP = 3.0


# --- worker side: one pipeline, in its own process


def load_model_and_records(method: str, device: torch.device):
    """The default recipe's validated records and assembled model (exactly as ``run_adapt`` builds them)."""
    cfg = load_run_config("default", {"model.text.method": method})
    torch.manual_seed(cfg.train.seed)
    records, _ = validate_records(training_records(cfg), cfg.data.max_caption_chars, cfg.data.max_bad_fraction)
    vision, text = build_vision_tower(cfg.model.vision).to(device), build_text_tower(cfg.model.text).to(device)
    model = assemble(vision, text, cfg.model, cfg.train.seed).to(device)
    return cfg, records, model


def timed_prepare(records, model, lang: str, with_features: bool):
    """``prepare_data`` with the time of its image-feature stage (hash + cache read + extraction of misses) measured.

    Without features, the feature stage is skipped: the ``PreparedData`` a trained vision tower gets.
    """
    original, feature_seconds = mlilt.model.image_features, []

    def measured(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs) if with_features else (torch.empty(0), CacheStats())
        feature_seconds.append(time.perf_counter() - start)
        return out

    mlilt.model.image_features = measured
    try:
        start = time.perf_counter()
        data = mlilt.model.prepare_data(records, model, eval_lang=lang, progress=False)
        seconds = time.perf_counter() - start
    finally:
        mlilt.model.image_features = original
    if not with_features:
        data = dataclasses.replace(data, image_features={}, cache_stats={})
    return data, seconds, sum(feature_seconds)


def time_epoch(model, data, train_cfg, steps: int | None, device: torch.device) -> dict:
    """Run the first ``steps`` batches of epoch 0 (all if None) as ``train`` does; per-step seconds and losses."""
    table = data.splits["train"]
    lengths = [len(t) for t in table.tokens]
    batches = epoch_batches(lengths, train_cfg.batch_size, train_cfg.seed, 0)
    total_steps = len(batches) * train_cfg.epochs
    warmup = max(1, int(train_cfg.warmup_fraction * total_steps))
    optimizer, loss_fn = make_optimizer(model, train_cfg), ContrastiveLoss()
    views = list(data.image_features) or ["plain"]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    torch.manual_seed(train_cfg.seed)  # same dropout masks in both pipelines
    model.train()
    seconds, losses = [], []
    for step, batch in enumerate(batches[:steps]):
        tick = time.perf_counter()
        set_learning_rates(optimizer, step, total_steps, warmup)
        view = view_for_step(views, train_cfg.seed, step)
        loss, _ = training_step(model, data, table, batch, view, optimizer, loss_fn, train_cfg.grad_clip, autocast)
        losses.append(loss.item())  # synchronises, as train's per-step log does
        seconds.append(time.perf_counter() - tick)
    return {"steps_per_epoch": len(batches), "step_seconds": seconds, "losses": losses}


def run_worker(args: argparse.Namespace) -> dict:
    """Set up one pipeline and time it; returns a JSON-able dict (written to ``--result-file``)."""
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    started = time.perf_counter()
    cfg, records, model = load_model_and_records(args.method, device)
    setup_s = time.perf_counter() - started
    cold_dir = None
    if args.worker == "cold":  # towers and pictures stay where they are; only the feature cache starts empty
        cold_dir = tempfile.TemporaryDirectory(prefix="mlilt-cold-")
        os.environ["MLILT_CACHE"] = cold_dir.name
    data, prepare_s, features_s = timed_prepare(records, model, cfg.data.lang, args.worker != "per-step")
    stats = {view: dataclasses.asdict(s) for view, s in data.cache_stats.items()}
    result = {
        "pipeline": args.worker,
        "setup_s": setup_s,
        "prepare_s": prepare_s,
        "image_feature_stage_s": features_s,
        "cache_stats": stats,
        "pictures": len(data.picture_ids),
        "train_pairs": len(data.splits["train"]),
    }
    if cold_dir is None:
        steps = args.steps or None
        result |= time_epoch(model, data, cfg.train, steps, device)
    else:
        cold_dir.cleanup()
    result["peak_rss_mb"] = peak_rss_mib()
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


# --- parent side: one process per pipeline, then the comparison


def spawn(pipeline: str, args: argparse.Namespace) -> dict:
    """Run one pipeline in a fresh Python process and read back its result."""
    with tempfile.TemporaryDirectory(prefix="mlilt-bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            pipeline,
            "--result-file",
            str(result_file),
            "--method",
            args.method,
            "--steps",
            str(args.steps),
            "--threads",
            str(args.threads),
            "--device",
            args.device,
        ]
        print(f"[{pipeline}] running ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True)
        result = json.loads(result_file.read_text(encoding="utf-8"))
    result["process_wall_s"] = time.perf_counter() - start
    return result


def summarise(result: dict, batch_size: int) -> dict:
    """Epoch seconds (measured and extrapolated from the median step) and throughput of one pipeline."""
    seconds = result["step_seconds"]
    median = statistics.median(seconds)
    steps_per_epoch = result["steps_per_epoch"]
    full = len(seconds) == steps_per_epoch
    epoch_s = sum(seconds) if full else median * steps_per_epoch
    missed = sum(s["misses"] for s in result["cache_stats"].values())
    return {
        "timed_steps": len(seconds),
        "steps_per_epoch": steps_per_epoch,
        "measured_s": sum(seconds),
        "median_step_s": median,
        "epoch_s": epoch_s,
        "epoch_is_extrapolated": not full,
        "pairs_per_s": batch_size / median,
        "first_epoch_with_prepare_s": epoch_s + result["prepare_s"],
        "feature_extraction_s": result["image_feature_stage_s"] if missed else 0.0,
    }


def table(results: dict[str, dict], summaries: dict[str, dict], cold: dict | None) -> str:
    rows = [
        "| pipeline | steps timed | median step (s) | epoch (s) | pairs/s | prepare (s) | epoch + prepare (s) "
        "| feature cache | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, s in summaries.items():
        r = results[name]
        cache = "; ".join(f"{v}: {c['hits']} hit / {c['misses']} miss" for v, c in r["cache_stats"].items()) or "-"
        epoch = f"{s['epoch_s']:.1f}{'*' if s['epoch_is_extrapolated'] else ''}"
        rows.append(
            f"| {name} | {s['timed_steps']}/{s['steps_per_epoch']} | {s['median_step_s']:.2f} | {epoch} "
            f"| {s['pairs_per_s']:.0f} | {r['prepare_s']:.1f} | {s['first_epoch_with_prepare_s']:.1f} | {cache} "
            f"| {r['peak_rss_mb']:.0f} |"
        )
    if cold:
        misses = sum(c["misses"] for c in cold["cache_stats"].values())
        rows.append(
            f"| cold cache fill | - | - | - | - | {cold['prepare_s']:.1f} | - | {misses} computed "
            f"({cold['image_feature_stage_s']:.1f} s) | {cold['peak_rss_mb']:.0f} |"
        )
    return "\n".join(rows)


def compare(results: dict[str, dict], batch_size: int) -> dict:
    summaries = {name: summarise(results[name], batch_size) for name in PIPELINES}
    cached, per_step = summaries["cached"], summaries["per-step"]
    losses = [results[name]["losses"] for name in PIPELINES]
    return {
        "summaries": summaries,
        "speedup_epoch": per_step["epoch_s"] / cached["epoch_s"],
        "speedup_first_epoch_with_prepare": per_step["first_epoch_with_prepare_s"]
        / cached["first_epoch_with_prepare_s"],
        "max_abs_loss_difference": max(abs(a - b) for a, b in zip(*losses)),
    }


def run_all(args: argparse.Namespace) -> dict:
    load_before = warn_if_busy()
    results = {name: spawn(name, args) for name in PIPELINES}
    cold = spawn("cold", args) if args.cold else None
    comparison = compare(results, batch_size=128)
    print(table(results, comparison["summaries"], cold))
    extrapolated = any(s["epoch_is_extrapolated"] for s in comparison["summaries"].values())
    if extrapolated:
        print("\n\\* extrapolated: median step x steps per epoch")
    verdict = "meets" if comparison["speedup_epoch"] >= TARGET_SPEEDUP else "misses"
    print(
        f"\ncached is {comparison['speedup_epoch']:.1f}x faster per epoch "
        f"({verdict} the {TARGET_SPEEDUP:.0f}x target); "
        f"{comparison['speedup_first_epoch_with_prepare']:.1f}x with each pipeline's data preparation counted; "
        f"max |loss difference| over the timed steps {comparison['max_abs_loss_difference']:.2e}"
    )
    meta = {
        "recipe": "default",
        "lang": "sw",
        "method": args.method,
        "batch_size": 128,
        "steps_arg": args.steps,
        "threads": args.threads,
        "device": args.device,
        **machine_meta(load_before),
    }
    return {"meta": meta, "pipelines": results, "cold": cold, **comparison}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="adapters", help="text-tower method (frozen, adapters, lora, ...)")
    parser.add_argument("--steps", type=int, default=0, help="time only the first N batches (0: the full epoch)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in each pipeline's process")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--cold", action="store_true", help="also time filling an empty feature cache")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "feature_cache.json")
    parser.add_argument("--worker", choices=[*PIPELINES, "cold"], help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        args.result_file.write_text(json.dumps(run_worker(args)) + "\n", encoding="utf-8")
        return 0
    report = run_all(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, report)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
