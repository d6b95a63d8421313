"""Inference throughput of the offline default model (e5-small text tower with adapters, EfficientNet-Lite0 vision).

The model is assembled exactly as ``mlilt adapt`` builds it from ``configs/default.yaml`` (untrained adapters
and heads: their values do not change the speed). On real Emoji-CLDR Swahili data it measures, after warm-up
calls, the median and p90 time of one call and the throughput at the median of

- text: :meth:`mlilt.model.DualEncoder.embed_texts` on real Swahili captions (tokenisation included), batch
  sizes 1, 32, 256;
- images: :meth:`mlilt.model.DualEncoder.embed_images` on real pictures, with the PIL decode of the files
  included (decode + preprocess + tower + head), batch sizes 1, 32, 64;
- vision tower only: the tower's forward pass on pre-made pixel tensors, same batch sizes;
- search: one text query encoded by the model + top-k search over a gallery of random vectors, through
  :func:`search_latency.bench` (``benchmarks/search_latency.py``).

    python benchmarks/inference.py                       # all of it, on CUDA if available
    python benchmarks/inference.py --device cpu --repeats 5 --search-sizes 1000 --json /tmp/inference.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mlilt.adapt import training_records
from mlilt.config import load_run_config
from mlilt.data.images import open_rgb
from mlilt.data.validate import validate_records
from mlilt.demo.index import faiss_available
from mlilt.model import DualEncoder, assemble
from mlilt.towers.registry import build_text_tower, build_vision_tower

import search_latency
from _common import machine_meta, pick_device, warn_if_busy, write_json

ROOT = Path(__file__).resolve().parent.parent


def load_default(device: torch.device) -> tuple[DualEncoder, list[str], list[str]]:
    """The default model, and the distinct Swahili captions and picture paths of the validated records."""
    cfg = load_run_config("default")
    records, _ = validate_records(training_records(cfg), cfg.data.max_caption_chars, cfg.data.max_bad_fraction)
    vision, text = build_vision_tower(cfg.model.vision), build_text_tower(cfg.model.text)
    model = assemble(vision, text, cfg.model, cfg.train.seed).to(device).eval()
    captions = list(dict.fromkeys(r.caption for r in records if r.lang in (None, cfg.data.lang)))
    paths = list(dict.fromkeys(r.image for r in records))
    return model, captions, paths


def time_calls(call, warmup: int, repeats: int, device: torch.device) -> list[float]:
    """Seconds of ``repeats`` calls ``call(i)`` after ``warmup`` untimed ones (CUDA work waited for)."""
    seconds = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        call(i)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def row(part: str, batch: int, seconds: list[float]) -> dict:
    median = statistics.median(seconds)
    return {
        "part": part,
        "batch": batch,
        "calls": len(seconds),
        "median_ms": median * 1e3,
        "p90_ms": float(np.percentile(np.asarray(seconds), 90)) * 1e3,
        "items_per_s": batch / median,
    }


def window(items: list, batch: int, i: int) -> list:
    """The ``i``-th slice of ``batch`` items, wrapping around (each call sees other items)."""
    start = (i * batch) % len(items)
    return [items[(start + j) % len(items)] for j in range(batch)]


def bench_text(model: DualEncoder, captions: list[str], sizes: list[int], args, device) -> list[dict]:
    def call(batch):
        return lambda i: model.embed_texts(window(captions, batch, i), batch_size=batch)

    return [row("text: embed_texts", b, time_calls(call(b), args.warmup, args.repeats, device)) for b in sizes]


def bench_images(model: DualEncoder, paths: list[str], sizes: list[int], args, device) -> list[dict]:
    def call(batch):
        return lambda i: model.embed_images([open_rgb(p) for p in window(paths, batch, i)], batch_size=batch)

    return [
        row("images: decode + embed_images", b, time_calls(call(b), args.warmup, args.repeats, device)) for b in sizes
    ]


@torch.no_grad()
def bench_tower(model: DualEncoder, paths: list[str], sizes: list[int], args, device) -> list[dict]:
    pixels = torch.stack([model.vision.preprocess(open_rgb(p)) for p in paths[: max(sizes)]]).to(device)

    def call(batch):
        return lambda i: model.vision(pixels[:batch])

    return [row("vision tower only", b, time_calls(call(b), args.warmup, args.repeats, device)) for b in sizes]


def bench_search(model: DualEncoder, args) -> list[dict]:
    """Single-query latency (encode with the real model + search) via ``search_latency.bench``."""

    def encode(text: str) -> np.ndarray:
        return model.embed_texts([text])[0].numpy()

    backends = [b for b in args.search_backends.split(",") if b != "faiss" or faiss_available()]
    dim = model.config.embed_dim
    return [
        search_latency.bench(encode, int(size), backend, args.search_queries, args.k, dim)
        for size in args.search_sizes.split(",")
        for backend in backends
    ]


def tables(rows: list[dict], search: list[dict]) -> str:
    lines = ["| part | batch | median (ms) | p90 (ms) | items/s |", "|---|---:|---:|---:|---:|"]
    lines += [
        f"| {r['part']} | {r['batch']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['items_per_s']:,.1f} |"
        for r in rows
    ]
    if search:
        lines += [
            "",
            "| gallery | backend | query median (ms) | query p95 (ms) | search only median (ms) |",
            "|---:|---|---:|---:|---:|",
        ]
        lines += [
            f"| {s['size']:,} | {s['backend']} | {s['query_ms_median']:.1f} | {s['query_ms_p95']:.1f} "
            f"| {s['search_ms_median']:.2f} |"
            for s in search
        ]
    return "\n".join(lines)


def sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before each measurement")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per (part, batch size)")
    parser.add_argument("--text-batches", default="1,32,256", help="comma-separated caption batch sizes")
    parser.add_argument("--image-batches", default="1,32,64", help="comma-separated picture batch sizes")
    parser.add_argument("--search-sizes", default="1000,10000,100000", help="gallery sizes ('' skips search)")
    parser.add_argument("--search-backends", default="exact,faiss", help="comma-separated: exact, faiss")
    parser.add_argument("--search-queries", type=int, default=50, help="timed queries per (size, backend)")
    parser.add_argument("--k", type=int, default=8, help="results per query")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "inference.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    load_before = warn_if_busy() if device.type == "cpu" else os.getloadavg()[0]
    model, captions, paths = load_default(device)
    rows = bench_text(model, captions, sizes(args.text_batches), args, device)
    rows += bench_images(model, paths, sizes(args.image_batches), args, device)
    rows += bench_tower(model, paths, sizes(args.image_batches), args, device)
    search = bench_search(model, args) if args.search_sizes else []
    print(tables(rows, search))
    meta = {
        "recipe": "default",
        "text_tower": model.text.name,
        "vision_tower": model.vision.name,
        "image_size": list(model.vision.data_config["input_size"]),
        "captions": len(captions),
        "pictures": len(paths),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": args.threads,
        "warmup": args.warmup,
        "repeats": args.repeats,
        **machine_meta(load_before),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, {"meta": meta, "rows": rows, "search": search})
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
