"""ONNX serving against torch for a trained run: agreement, recall, query latency and file sizes.

Exports the run with ``mlilt export --onnx`` (fp32 and int8), then, on the run's test split (Swahili Emoji-CLDR
for ``runs/sw-adapters``):

- cosine of every test caption's and picture's ONNX embedding with torch's (min and mean);
- test retrieval (mlilt's strict protocol) with torch, ONNX fp32 and ONNX int8 embeddings;
- one text query's latency (embed one caption, tokenisation included), median and p90 over ``--queries``
  captions, for torch and both ONNX files, in this one process;
- the export's time and the files' sizes.

    python benchmarks/onnx_serving.py --run runs/sw-adapters
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mlilt.adapt import run_split
from mlilt.evaluation.metrics import retrieval_metrics
from mlilt.hub.adapter_files import read_adapter_config
from mlilt.hub.loading import load
from mlilt.hub.onnx_export import export_onnx
from mlilt.onnx_runtime import OnnxModel

from _common import machine_meta, warn_if_busy, write_json

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("text_to_image_R@1", "text_to_image_R@10", "image_to_text_R@1", "image_to_text_R@10")


def latency(embed, queries: list[str]) -> dict:
    for query in queries[:5]:
        embed([query])  # warm-up
    seconds = []
    for query in queries:
        tick = time.perf_counter()
        embed([query])
        seconds.append(time.perf_counter() - tick)
    return {"median_ms": 1e3 * statistics.median(seconds), "p90_ms": 1e3 * float(np.percentile(seconds, 90))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "sw-adapters")
    parser.add_argument("--queries", type=int, default=200, help="timed single-caption queries")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "onnx_serving.json")
    args = parser.parse_args()
    load_before = warn_if_busy()
    torch.set_num_threads(args.threads)
    model = load(args.run)
    captions, picture_paths, targets = run_split(args.run, model)
    pictures = [model.vision.open(p) for p in picture_paths]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "onnx"
        tick = time.perf_counter()
        export_onnx(args.run, folder)
        export_seconds = time.perf_counter() - tick
        sizes = {p.name: p.stat().st_size / 2**20 for p in sorted(folder.iterdir())}
        with torch.no_grad():
            reference = {"text": model.embed_texts(captions).numpy(), "image": model.embed_images(pictures).numpy()}
        rows = {
            "torch": {"recall": retrieval_metrics(torch.from_numpy(reference["text"] @ reference["image"].T), targets)}
        }
        rows["torch"]["latency"] = latency(model.embed_texts, captions[: args.queries])
        for precision in ("fp32", "int8"):
            runtime = OnnxModel(folder, int8=precision == "int8", threads=args.threads)
            got = {"text": runtime.embed_texts(captions), "image": runtime.embed_images(pictures)}
            cosine = {side: (got[side] * reference[side]).sum(1) for side in got}
            rows[f"onnx {precision}"] = {
                "recall": retrieval_metrics(torch.from_numpy(got["text"] @ got["image"].T), targets),
                "cosine": {side: {"min": float(c.min()), "mean": float(c.mean())} for side, c in cosine.items()},
                "latency": latency(runtime.embed_texts, captions[: args.queries]),
            }
    print(f"| | {' | '.join(KEYS)} | text cos min / mean | image cos min / mean | query median / p90 ms |")
    print("|---|" + "---:|" * (len(KEYS) + 3))
    for name, row in rows.items():
        cos = row.get("cosine")
        cells = [f"{row['recall'][k]:.1f}" for k in KEYS]
        for side in ("text", "image"):
            cells.append(f"{cos[side]['min']:.4f} / {cos[side]['mean']:.4f}" if cos else "–")
        cells.append(f"{row['latency']['median_ms']:.1f} / {row['latency']['p90_ms']:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"export {export_seconds:.1f} s; sizes MiB: " + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items()))
    write_json(
        args.out,
        {
            "run": str(args.run),
            "lang": read_adapter_config(args.run).get("lang"),
            "rows": rows,
            "export_seconds": export_seconds,
            "sizes_mib": sizes,
            "threads": args.threads,
            "test": {"captions": len(captions), "pictures": len(pictures)},
            "machine": machine_meta(load_before),
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
