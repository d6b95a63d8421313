"""``mlilt adapt``: data -> model -> train -> evaluate for one language, written into a run folder.

The run folder holds the adapter files of the best epoch, the resolved config, ``metrics.json``
(test retrieval for the trained method and for the ``frozen`` reference: heads only, same data
and budget), ``metrics.jsonl`` (per step) and ``summary.txt``. The data is loaded and checked before
any model is built or any file is written.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import sys
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import torch

from mlilt.config import RunConfig
from mlilt.constants import (
    CHECKPOINT_NAME,
    HEADS_WARMUP_DIR,
    METRICS_NAME,
    REFERENCE_DIR,
    RUN_CONFIG_NAME,
    SUMMARY_NAME,
)
from mlilt.data.prepare import PreparedData, picture_paths
from mlilt.data.records import CaptionRecord
from mlilt.data.scarcity import limit_training
from mlilt.data.sources import load_records
from mlilt.data.validate import check_splits, validate_records
from mlilt.evaluation.retrieval import evaluate_protocols
from mlilt.features import fill
from mlilt.hub.adapter_files import load_adapter_into
from mlilt.model import DualEncoder, assemble, prepare_data
from mlilt.run_folder import run_lock
from mlilt.threads import describe, thread_record
from mlilt.towers.registry import build_text_tower, build_vision_tower
from mlilt.training.checkpoint import checkpoint_state
from mlilt.training.distributed import barrier, is_main, main_process_first, rank_world
from mlilt.training.heads import copy_heads, frozen_features, heads_only, train_heads
from mlilt.training.loop import train


def training_records(cfg: RunConfig) -> list[CaptionRecord]:
    """The caption records a data config names: its source (and extra languages), extra sources, scarcity limits."""
    records = load_records(cfg.data.source, cfg.data.lang, cfg.data.extra_langs)
    for extra in cfg.data.extra_sources:
        records += load_records(extra, cfg.data.lang)
    if cfg.data.max_train_captions or cfg.data.max_train_images:
        records = limit_training(records, cfg.data.max_train_captions, cfg.data.max_train_images, cfg.train.seed)
    return records


def run_split(run: Path, model: DualEncoder, split: str = "test") -> tuple[list[str], list[Path], torch.Tensor]:
    """One split of a run folder's data as ``mlilt adapt`` evaluated it: its captions (in the run's language), its
    distinct pictures, and for each caption the column of its picture."""
    cfg = RunConfig.from_dict(json.loads((Path(run) / RUN_CONFIG_NAME).read_text(encoding="utf-8")))
    records = [r for r in training_records(cfg) if r.split == split]
    data = prepare_data(records, model, eval_lang=cfg.data.lang, progress=False, splits=(split,))
    table = data.splits[split]
    pictures = sorted(set(table.picture.tolist()))
    column = {p: i for i, p in enumerate(pictures)}
    targets = torch.tensor([column[p] for p in table.picture.tolist()])
    return table.captions, [data.picture_paths[p] for p in pictures], targets


def caption_sources(records: list[CaptionRecord]) -> dict[str, int]:
    """Training captions per source (``human``, ``machine-translated:<model>``), largest first."""
    counts = Counter(r.source for r in records if r.split == "train")
    return dict(counts.most_common())


def run_adapt(
    cfg: RunConfig, out_dir: Path, resume: bool = False, reference: bool = True, progress: bool = True
) -> dict:
    """Train the configured method (and the frozen reference) and write the run folder; returns metrics."""
    started = time.perf_counter()
    records, report = validate_records(
        training_records(cfg), cfg.data.max_caption_chars, cfg.data.max_bad_fraction, cfg.model.vision.max_pixels
    )
    _say(f"data: {report}")
    check_splits(records, cfg.data.lang, cfg.train.batch_size)
    sources = caption_sources(records)
    shares = ", ".join(f"{n:,} {s} ({100 * n / sum(sources.values()):.0f}%)" for s, n in sources.items())
    _say(f"training captions: {shares}")
    if describe():
        _say(describe())
    torch.manual_seed(cfg.train.seed)
    if cfg.train.num_threads and cfg.train.num_threads != torch.get_num_threads():
        torch.set_num_threads(cfg.train.num_threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    vision, text = build_vision_tower(cfg.model.vision).to(device), build_text_tower(cfg.model.text).to(device)
    model = assemble(vision, text, cfg.model, cfg.train.seed).to(device)
    rank, world = rank_world()
    if world > 1 and model.vision_frozen:  # each process computes its share of the missing picture features
        for view in cfg.model.image_views:
            fill(model.vision, picture_paths(records), view, shard=(rank, world), progress=progress and is_main())
        barrier()
    with main_process_first():
        data = prepare_data(records, model, eval_lang=cfg.data.lang, progress=progress and is_main())
    # Only now is the folder made: bad data or a wrong tower name leave nothing behind. One run writes at a time.
    with run_lock(out_dir, resume) if is_main() else nullcontext():
        summary = report.to_dict() | {"sources": sources}
        return _train_and_write(cfg, model, data, records, summary, out_dir, resume, reference, progress, started)


def _train_and_write(
    cfg: RunConfig,
    model: DualEncoder,
    data: PreparedData,
    records: list[CaptionRecord],
    data_summary: dict,
    out_dir: Path,
    resume: bool,
    reference: bool,
    progress: bool,
    started: float,
) -> dict:
    """The reference, the warm-up, the method, the test, and the run folder's files (the folder is locked)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if is_main():
        cfg.save(out_dir / RUN_CONFIG_NAME)
    _say("image feature cache: " + ", ".join(f"{v}: {s}" for v, s in data.cache_stats.items()))
    sizes = {name: len(table) for name, table in data.splits.items()}
    _say(f"pairs: {sizes}; pictures: {len(data.picture_ids)}")
    params = model.parameter_report()
    _say("trainable: " + "; ".join(f"{k} {v}" for k, v in params.items()))

    info = {"lang": cfg.data.lang, "data": cfg.data.source, "recipe": cfg.recipe}
    heads_metrics = _heads_stages(cfg, model, data, records, out_dir, reference, resume, progress)
    train_cfg = cfg.train
    if model.text_frozen and model.vision_frozen:  # heads only: the warm-up budget is part of the run
        train_cfg = dataclasses.replace(train_cfg, epochs=epoch_budget(cfg))
    elif cfg.train.head_warmup_epochs:  # the heads start trained (or come from the checkpoint)
        train_cfg = dataclasses.replace(train_cfg, head_lr=cfg.train.warm_head_lr or cfg.train.lr)
    result = train(model, data, train_cfg, out_dir, resume=resume, progress=progress, adapter_info=info)
    load_adapter_into(model, out_dir)
    test = evaluate_protocols(model, data, data.splits["test"])
    metrics = {
        "lang": cfg.data.lang,
        "method": cfg.model.text.method,
        "test": test["strict"],  # ties count against the model (mlilt's protocol)
        "test_clip_benchmark": test["clip-benchmark"],  # as published multilingual numbers are computed
        "best_epoch": result.best_epoch + 1,
        "train_seconds": round(result.seconds, 1),
        "skipped_steps": result.skipped_steps,
        "history": result.history,
        "parameters": {k: dataclasses.asdict(v) | {"percent": v.percent} for k, v in params.items()},
        "data": data_summary,
        "splits": sizes,
    }
    metrics.update(heads_metrics)
    metrics["total_seconds"] = round(time.perf_counter() - started, 1)
    metrics["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if thread_record() is not None:
        metrics["torch_threads"] = thread_record()
    if torch.cuda.is_available():
        metrics["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if is_main():
        (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        summary = summarise(metrics, out_dir)
        (out_dir / SUMMARY_NAME).write_text(summary + "\n", encoding="utf-8")
        print(summary)
    return metrics


def epoch_budget(cfg: RunConfig) -> int:
    """Epochs of a heads-only run with the same budget as the method (its warm-up included)."""
    return cfg.train.epochs + cfg.train.head_warmup_epochs


def _heads_stages(
    cfg: RunConfig,
    model: DualEncoder,
    data: PreparedData,
    records: list[CaptionRecord],
    out_dir: Path,
    reference: bool,
    resume: bool,
    progress: bool,
) -> dict:
    """Before the method trains: the ``frozen`` reference and the heads warm-up (see :mod:`mlilt.heads`).

    Both train heads on the untrained model's (= pretrained towers') features. The warm-up's heads are
    copied into ``model``; a resumed run skips it (its checkpoint holds the heads) and reports the warm-up the
    first process did, from the warm-up's own checkpoint.
    """
    if model.text_frozen and model.vision_frozen:
        return {}  # a frozen run is its own reference and needs no warm-up
    resumed = resume and (out_dir / CHECKPOINT_NAME).exists()
    warmup = 0 if resumed else cfg.train.head_warmup_epochs
    warm_dir = out_dir / HEADS_WARMUP_DIR
    metrics = {}
    if resumed and (warm_dir / CHECKPOINT_NAME).exists():
        done = checkpoint_state(warm_dir / CHECKPOINT_NAME)
        metrics["heads_warmup"] = _warmup_summary(
            cfg.train.head_warmup_epochs, done["best_epoch"], done["best_metric"], done.get("seconds", 0.0)
        )
    if not (reference or warmup):
        return metrics
    seed, lang = cfg.train.seed, cfg.data.lang
    frozen_data = frozen_features(heads_only(model, seed), data, records, lang)
    if reference:
        budget = epoch_budget(cfg)
        _say(f"frozen reference: heads only, {budget} epochs")
        ref = heads_only(model, seed)
        result = train_heads(ref, frozen_data, cfg.train, budget, out_dir / REFERENCE_DIR, progress, {"lang": lang})
        ref_test = evaluate_protocols(ref, frozen_data, frozen_data.splits["test"])
        metrics["frozen_reference"] = {
            "test": ref_test["strict"],
            "test_clip_benchmark": ref_test["clip-benchmark"],
            "best_epoch": result.best_epoch + 1,
            "epochs": budget,
            "train_seconds": round(result.seconds, 1),
        }
    if warmup:
        _say(f"heads warm-up: heads only, {warmup} epochs, then {cfg.model.text.method}")
        warm = heads_only(model, seed)
        result = train_heads(warm, frozen_data, cfg.train, warmup, warm_dir, progress, {"lang": lang})
        copy_heads(warm, model)
        metrics["heads_warmup"] = _warmup_summary(warmup, result.best_epoch, result.best_metric, result.seconds)
    return metrics


def _warmup_summary(epochs: int, best_epoch: int, best_metric: float, seconds: float) -> dict:
    return {
        "epochs": epochs,
        "best_epoch": best_epoch + 1,
        "val_R@1": round(best_metric, 2),
        "train_seconds": round(seconds, 1),
    }


def summarise(metrics: dict, out_dir: Path) -> str:
    """A short human-readable summary of a run."""
    test, params = metrics["test"], metrics["parameters"]["total"]
    lines = [
        f"mlilt adapt: {metrics['lang']}, method {metrics['method']} -> {out_dir}",
        f"  trainable {params['trainable']:,} of {params['total']:,} parameters ({params['percent']:.2f}%)",
        f"  test ({int(test['num_pictures'])} pictures, {int(test['num_captions'])} captions):",
        f"  {'':18s}{'t->i R@1':>9s}{'R@5':>7s}{'R@10':>7s}{'i->t R@1':>10s}{'R@5':>7s}{'R@10':>7s}{'mean':>7s}",
        _row(metrics["method"], test),
    ]
    if "frozen_reference" in metrics:
        ref = metrics["frozen_reference"]["test"]
        lines.append(_row(f"frozen ({metrics['frozen_reference']['epochs']} ep)", ref))
        gain = test["text_to_image_R@1"] - ref["text_to_image_R@1"]
        lines.append(f"  gain over frozen: {gain:+.1f} text->image R@1")
    if "heads_warmup" in metrics:
        warm = metrics["heads_warmup"]
        lines.append(f"  started from heads trained alone for {warm['epochs']} epochs (val R@1 {warm['val_R@1']:.1f})")
    if metrics.get("skipped_steps"):
        lines.append(f"  {metrics['skipped_steps']} steps skipped: their loss or gradient was not finite")
    changes = metrics.get("torch_threads", {}).get("changes", [])
    if changes:
        times = "once" if len(changes) == 1 else f"{len(changes)} times"
        where = f"{METRICS_NAME}: torch_threads"
        lines.append(f"  torch's thread count changed {times} while other processes took CPUs ({where}):")
        lines.append(
            "  the last bits of features and weights, and so within seed noise the recall, can differ from a quiet "
            "run; --threads N keeps runs bit-for-bit repeatable"
        )
    lines.append(f"  best epoch {metrics['best_epoch']}; {metrics['total_seconds']:.0f} s in all")
    return "\n".join(lines)


def _row(name: str, m: dict) -> str:
    keys = [f"{d}_R@{k}" for d in ("text_to_image", "image_to_text") for k in (1, 5, 10)]
    return (
        f"  {name:18s}"
        + "".join(f"{m[k]:>{w}.1f}" for k, w in zip(keys, (9, 7, 7, 10, 7, 7)))
        + f"{m['mean_recall']:>7.1f}"
    )


def _say(message: str) -> None:
    if is_main():
        print(message, file=sys.stderr)
