"""Time to quality: how long ``adapters`` and ``full`` take to reach their best validation recall.

Reads the run folders that ``benchmarks/quality_sw.py`` trained (``RUNS/METHOD-sSEED/metrics.json``;
nothing is trained here). Per run, the training clock is the heads warm-up's seconds plus the method's
per-epoch ``seconds`` from its history (validation passes included, data preparation and the frozen
reference not). For each seed it reports:

- each method's best validation text->image R@1 and the training seconds until that epoch ended;
- the seconds until ``adapters`` first came within 1 R@1 point of ``full``'s best (None: never);
- peak RSS of each run's process (``peak_rss_mb``).

    python benchmarks/time_to_quality.py                       # after quality_sw.py --methods adapters,full
    python benchmarks/time_to_quality.py --runs DIR --fast adapters --slow full
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from _common import write_json

ROOT = Path(__file__).resolve().parent.parent
METRIC = "val_text_to_image_R@1"


def clock(metrics: dict) -> list[tuple[float, float]]:
    """(training seconds at the end of the epoch, val R@1) per epoch, the warm-up's seconds included."""
    start = metrics.get("heads_warmup", {}).get("train_seconds", 0.0)
    return [(start + h["seconds"], h[METRIC]) for h in metrics["history"]]


def first_reaching(points: list[tuple[float, float]], target: float) -> float | None:
    return next((seconds for seconds, value in points if value >= target), None)


def compare(fast: dict, slow: dict) -> dict:
    fast_points, slow_points = clock(fast), clock(slow)
    fast_best = max(fast_points, key=lambda p: p[1])
    slow_best = max(slow_points, key=lambda p: p[1])
    return {
        "fast_best_val": fast_best[1],
        "fast_seconds_to_best": fast_best[0],
        "slow_best_val": slow_best[1],
        "slow_seconds_to_best": slow_best[0],
        "fast_seconds_to_within_1_of_slow": first_reaching(fast_points, slow_best[1] - 1.0),
        "fast_peak_rss_mb": fast["peak_rss_mb"],
        "slow_peak_rss_mb": slow["peak_rss_mb"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=ROOT / "benchmarks" / "results" / "runs-quality_sw")
    parser.add_argument("--fast", default="adapters", help="the parameter-efficient method")
    parser.add_argument("--slow", default="full", help="the method it is compared with")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "time_to_quality.json")
    args = parser.parse_args(argv)

    rows = {}
    for fast_path in sorted(args.runs.glob(f"{args.fast}-s*/metrics.json")):
        seed = fast_path.parent.name.rsplit("-s", 1)[1]
        slow_path = args.runs / f"{args.slow}-s{seed}" / "metrics.json"
        if slow_path.exists():
            rows[seed] = compare(*(json.loads(p.read_text(encoding="utf-8")) for p in (fast_path, slow_path)))
    if not rows:
        print(f"no {args.fast}-sN / {args.slow}-sN run pairs in {args.runs}: run benchmarks/quality_sw.py first")
        return 1
    f, s = args.fast, args.slow
    print(
        f"| seed | {f} best val R@1 | s to best | {s} best val R@1 | s to best | {f} s to within 1 of {s} "
        f"| peak RSS MB {f} / {s} |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for seed, r in rows.items():
        within = r["fast_seconds_to_within_1_of_slow"]
        print(
            f"| {seed} | {r['fast_best_val']:.1f} | {r['fast_seconds_to_best']:.0f} | {r['slow_best_val']:.1f} "
            f"| {r['slow_seconds_to_best']:.0f} | {'never' if within is None else f'{within:.0f}'} "
            f"| {r['fast_peak_rss_mb']:,.0f} / {r['slow_peak_rss_mb']:,.0f} |"
        )
    time_ratio = statistics.fmean(r["slow_seconds_to_best"] / r["fast_seconds_to_best"] for r in rows.values())
    memory_ratio = statistics.fmean(r["fast_peak_rss_mb"] / r["slow_peak_rss_mb"] for r in rows.values())
    print(
        f"mean over seeds: {s} takes {time_ratio:.1f}x {f}'s time to its best; "
        f"{f} peak RSS = {memory_ratio:.2f}x {s}'s"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"time_ratio_slow_over_fast": time_ratio, "memory_ratio_fast_over_slow": memory_ratio}
    write_json(args.out, {"fast": f, "slow": s, "seeds": rows, "summary": summary})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
