"""Quality benchmark on the offline default (Emoji-CLDR Swahili, e5-small text, EfficientNet-Lite0 vision).

For every (method, seed) it runs ``mlilt adapt --lang sw --config RECIPE --method M --seed S
[--no-reference] --out RUNS/M-sS`` in a fresh process, then prints, per method, the mean ± std over
seeds of test text->image and image->text R@1 / R@10, the best validation R@1 and the training
seconds, and writes every number to a JSON file.

    python benchmarks/quality_sw.py             # adapters (+ its frozen reference), full, layernorm; seeds 0,1,2
    python benchmarks/quality_sw.py --methods adapters,frozen --seeds 0 --config /tmp/recipe.yaml

A finished run folder is reused (its metrics.json is read again), so an interrupted benchmark
continues where it stopped; pass --fresh to train everything again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mlilt.evaluation.study import adapt_command

from _common import mean_std, write_json

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = [
    ("t->i R@1", "text_to_image_R@1"),
    ("t->i R@10", "text_to_image_R@10"),
    ("i->t R@1", "image_to_text_R@1"),
    ("i->t R@10", "image_to_text_R@10"),
]


def run_one(
    method: str, seed: int, config: str, lang: str, extra: list[str], out: Path, fresh: bool, reference: bool
) -> dict:
    """Train one (method, seed) through the CLI; returns its metrics.json plus the wall seconds."""
    metrics_path = out / "metrics.json"
    if metrics_path.exists() and not fresh:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        metrics.setdefault("wall_seconds", None)
        return metrics
    if out.exists():
        shutil.rmtree(out)
    flags = ["--config", config, "--seed", str(seed), *([] if reference else ["--no-reference"]), *extra]
    command = adapt_command(lang, method, out, *flags)
    print(f"[{time.strftime('%H:%M:%S')}] {' '.join(command[2:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{method} seed {seed} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    metrics["wall_seconds"] = round(wall, 1)
    (out / "wall_seconds.txt").write_text(f"{wall:.1f}\n", encoding="utf-8")
    return metrics


def best_val(metrics: dict) -> float:
    return max((h["val_text_to_image_R@1"] for h in metrics.get("history", [])), default=float("nan"))


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    summary = {}
    for method, items in runs.items():
        row = {}
        for _, key in COLUMNS:
            row[key] = mean_std([m["test"][key] for m in items])
        row["val_best_R@1"] = mean_std([best_val(m) for m in items])
        row["train_seconds"] = mean_std([m["train_seconds"] for m in items])
        summary[method] = {k: {"mean": round(v[0], 2), "std": round(v[1], 2)} for k, v in row.items()}
        summary[method]["seeds"] = len(items)
    return summary


def table(summary: dict[str, dict]) -> str:
    heads = [name for name, _ in COLUMNS] + ["val R@1", "train s"]
    keys = [key for _, key in COLUMNS] + ["val_best_R@1", "train_seconds"]
    lines = [f"{'method':12s}" + "".join(f"{h:>14s}" for h in heads)]
    for method, row in summary.items():
        cells = [f"{row[k]['mean']:.1f} ± {row[k]['std']:.1f}" for k in keys]
        lines.append(f"{method:12s}" + "".join(f"{c:>14s}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="adapters,full,layernorm", help="comma-separated text methods")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"), help="recipe name or YAML path")
    parser.add_argument("--lang", default="sw")
    parser.add_argument("--extra-args", default="", help="more `mlilt adapt` flags, e.g. '--epochs 8'")
    parser.add_argument(
        "--runs",
        type=Path,
        help="folder of the run folders (METHOD-sSEED); default "
        "benchmarks/results/runs-quality_LANG (another language never reuses these runs)",
    )
    parser.add_argument("--out", type=Path, help="JSON file; default benchmarks/results/quality_LANG.json")
    parser.add_argument("--fresh", action="store_true", help="retrain runs whose folder already holds metrics")
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the frozen reference (by default the first method's runs train it: the 'frozen' row)",
    )
    args = parser.parse_args(argv)
    args.runs = args.runs or ROOT / "benchmarks" / "results" / f"runs-quality_{args.lang}"
    args.out = args.out or ROOT / "benchmarks" / "results" / f"quality_{args.lang}.json"

    methods = [m for m in args.methods.split(",") if m]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    extra = args.extra_args.split()
    runs: dict[str, list[dict]] = {}
    per_run = []
    for method in methods:
        for seed in seeds:
            reference = method == methods[0] and not args.no_reference
            out = args.runs / f"{method}-s{seed}"
            m = run_one(method, seed, args.config, args.lang, extra, out, args.fresh, reference)
            runs.setdefault(method, []).append(m)
            if "frozen_reference" in m:  # heads only, the method's whole epoch budget, same seed
                runs.setdefault("frozen", []).append(m["frozen_reference"])
            per_run.append(
                {
                    "method": method,
                    "seed": seed,
                    "test": m["test"],
                    "best_epoch": m["best_epoch"],
                    "val_best_R@1": best_val(m),
                    "train_seconds": m["train_seconds"],
                    "total_seconds": m.get("total_seconds"),
                    "wall_seconds": m.get("wall_seconds"),
                }
            )
            print(
                f"  {method} seed {seed}: test t->i R@1 {m['test']['text_to_image_R@1']:.1f} "
                f"R@10 {m['test']['text_to_image_R@10']:.1f}; val best R@1 {per_run[-1]['val_best_R@1']:.1f}; "
                f"train {m['train_seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    summary = summarise(runs)
    print(f"{args.lang} test, mean ± std over seeds {seeds}; recipe {args.config} {' '.join(extra)}")
    print(table(summary))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "lang": args.lang,
        "config": str(args.config),
        "extra_args": extra,
        "seeds": seeds,
        "summary": summary,
        "runs": per_run,
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
