"""The largest training batch that fits a memory budget, per text tuning method.

For each tower set (default ``offline``) and text method, batch sizes are tried by doubling from ``--start``
(32) up to ``--max-batch`` (4096), then one bisection step between the last batch that fitted and the first
that did not. Each trial is a fresh subprocess running a few of mlilt's real training steps (the code of
``benchmarks/train_step.py``: same model, data, optimizer and ``training_step``), on each epoch's longest
batches (the widest padding, so the fit holds for a whole epoch). A batch fits when the trial's peak memory
(CPU: peak RSS of the process; CUDA: ``torch.cuda.max_memory_allocated``) is at most ``--budget-gb`` GiB.
On CPU a trial is stopped as soon as its resident memory passes the budget (it cannot fit any more), which
also keeps a large trial from taking the machine's memory.

Picture features are random rows (the frozen vision tower's features are cached in mlilt), so the number of
distinct pictures bounds nothing; a batch larger than the 4,077 Swahili training captions draws caption
indices with replacement (marked in the output).

    python benchmarks/largest_batch.py                                  # offline towers, 4 GiB, every method
    python benchmarks/largest_batch.py --methods lora,full --budget-gb 2 --max-batch 512
    python benchmarks/largest_batch.py --device cuda --bf16 --budget-gb 16 --towers offline,base
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from _common import write_json
from train_step import (
    METHODS,
    RESULTS,
    TOWER_SETS,
    Trial,
    add_common_arguments,
    machine_info,
    markdown_table,
    memory_kind,
    resolve_device_args,
    run_trial,
    split_list,
    trial_from_args,
)

MIB_PER_GIB = 1024


def fits(row: dict, budget_gb: float) -> bool:
    return row["status"] == "ok" and row["peak_memory_mib"] <= budget_gb * MIB_PER_GIB


def try_batch(base: Trial, batch: int, budget_gb: float, timeout: float | None) -> dict:
    row = run_trial(dataclasses.replace(base, batch_size=batch), timeout)
    peak = f"{row['peak_memory_mib']:,.0f} MiB" if "peak_memory_mib" in row else row["status"]
    print(f"  batch {batch}: {peak} -> {'fits' if fits(row, budget_gb) else 'does not fit'}", file=sys.stderr)
    return row


def search(base: Trial, args: argparse.Namespace) -> dict:
    """Doubling, then (optionally) one bisection step; every trial's row is kept."""
    trials, fit, miss = [], None, None
    batch = args.start
    while batch <= args.max_batch:
        trials.append(try_batch(base, batch, args.budget_gb, args.timeout))
        if not fits(trials[-1], args.budget_gb):
            miss = batch
            break
        fit, batch = batch, batch * 2
    if args.bisect and fit and miss and miss - fit > 8:
        middle = (fit + miss) // 2 // 8 * 8
        trials.append(try_batch(base, middle, args.budget_gb, args.timeout))
        if fits(trials[-1], args.budget_gb):
            fit = middle
        else:
            miss = middle
    failures = [t["status"] for t in trials if t["status"] not in ("ok", "over-memory-limit", "oom")]
    fit_row = next((t for t in trials if t["batch_size"] == fit), {})
    return {
        "towers": base.towers,
        "method": base.method,
        "largest_fit": fit,
        "first_miss": miss,
        "cap_reached": miss is None and fit is not None and fit * 2 > args.max_batch,
        "failed": failures[0] if failures else None,  # a trial failed for another reason than memory
        "fit_peak_mib": fit_row.get("peak_memory_mib"),
        "fit_with_replacement": fit_row.get("with_replacement", False),
        "trials": trials,
    }


def table_row(r: dict, args: argparse.Namespace) -> list:
    if r["largest_fit"] is None:
        largest = f"< {args.start}"
    else:
        largest = f"{r['largest_fit']:,}" + (" (cap reached)" if r["cap_reached"] else "")
        largest += " (with replacement)" if r["fit_with_replacement"] else ""
    peak = f"{r['fit_peak_mib']:,.0f}" if r["fit_peak_mib"] else "—"
    miss = f"{r['first_miss']:,}" if r["first_miss"] else "—"
    tried = ", ".join(str(t["batch_size"]) for t in r["trials"])
    return [r["towers"], r["method"], largest, peak, miss, r["failed"] or "", tried]


def trial_for(tower_set: str, method: str, args: argparse.Namespace, device: str) -> Trial:
    """The first trial of a search; on CPU its worker stops once past the budget (no fit is possible then)."""
    limit = args.budget_gb if device == "cpu" else None
    return trial_from_args(args, tower_set, method, args.start, device, longest_first=True, memory_limit_gb=limit)


HEADERS = ["towers", "text method", "largest batch that fits", "its peak MiB", "first miss", "failure", "tried"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, "offline")
    parser.add_argument("--budget-gb", type=float, default=4.0, help="memory budget in GiB (default 4)")
    parser.add_argument("--start", type=int, default=32, help="first batch size (default 32)")
    parser.add_argument("--max-batch", type=int, default=4096, help="largest batch tried (default 4096)")
    parser.add_argument(
        "--bisect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one bisection step between the last fit and the first miss (default on)",
    )
    parser.add_argument("--steps", type=int, default=1, help="measured steps per trial (default 1)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="steps before them (default 1; the optimizer "
        "state exists from the second step on, so at least 2 steps in all)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "largest_batch.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = resolve_device_args(args)
    towers, methods = split_list(args.towers, list(TOWER_SETS)), split_list(args.methods, METHODS)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    payload = {"benchmark": "largest_batch", "machine": machine_info(device), "settings": settings, "rows": []}
    for tower_set in towers:
        for method in methods:
            print(f"{tower_set} / {method}, budget {args.budget_gb} GiB:", file=sys.stderr, flush=True)
            base = trial_for(tower_set, method, args, device)
            payload["rows"].append(search(base, args))
            write_json(args.out, payload)  # after every method: a partial run still leaves its results
    print(markdown_table(HEADERS, [table_row(r, args) for r in payload["rows"]]))
    steps = f"{args.warmup} + {args.steps} steps per trial on the longest batches"
    print(
        f"\n{device}, budget {args.budget_gb} GiB of {memory_kind(device)}; {steps}; picture features random; "
        "batches above the training captions drawn with replacement."
    )
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
