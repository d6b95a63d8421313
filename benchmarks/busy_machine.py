"""One-epoch ``mlilt adapt --lang sw`` on an idle machine and next to a busy loop, for several thread settings.

Each run is one ``mlilt adapt --lang sw --epochs 1 --quiet`` in a fresh process (warm feature cache: a first run
fills it if needed and is not counted). "busy" starts a plain Python busy loop (``while True: pass``, one core)
before the run and stops it after. Read from the run's ``metrics.json``: the adapters epoch (``train_seconds``:
31 steps + the validation pass) and the whole command (``total_seconds``: data, heads warm-up, adapters epoch,
the frozen reference, test). Rows take turns (row 1, row 2, ..., row 1 again) so a slow spell of the machine does
not fall on one row; each row reports the median of ``--repeats`` runs.

Rows (``--rows`` picks some):

- ``torch default``: 2 fixed threads (``--threads 2``), what every mlilt command did before;
- ``default``: what mlilt does now: threads fitted to the CPUs other processes leave free (mlilt.threads);
- ``1 thread`` (``--threads 1``);
- ``2 threads passive``: 2 fixed threads that sleep instead of spinning while they wait
  (``OMP_WAIT_POLICY=PASSIVE``), the other remedy measured.

    python benchmarks/busy_machine.py --repeats 3     # about 20 minutes on the 2-core machine
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from mlilt.constants import METRICS_NAME
from mlilt.evaluation.study import adapt_command

from _common import machine_meta, warn_if_busy, write_json

ROOT = Path(__file__).resolve().parent.parent
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}
ROWS = {  # name -> (busy loop?, extra flags, extra environment)
    "idle torch default": (False, ["--threads", "2"], {}),
    "idle default": (False, [], {}),
    "idle 1 thread": (False, ["--threads", "1"], {}),
    "idle 2 threads passive": (False, ["--threads", "2"], PASSIVE),
    "busy torch default": (True, ["--threads", "2"], {}),
    "busy 2 threads passive": (True, ["--threads", "2"], PASSIVE),
    "busy 1 thread": (True, ["--threads", "1"], {}),
    "busy default": (True, [], {}),
}


def one_run(folder: Path, flags: list[str], env: dict, busy: bool) -> dict:
    mine = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    environment = {k: v for k, v in os.environ.items() if k not in mine} | env
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        done = subprocess.run(
            adapt_command("sw", "adapters", folder, "--epochs", "1", *flags),
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        if loop:
            loop.kill()
            loop.wait()
    if done.returncode:
        raise SystemExit(f"mlilt adapt failed:\n{done.stderr[-2000:]}")
    metrics = json.loads((folder / METRICS_NAME).read_text())
    told = [line for line in done.stderr.splitlines() if "thread" in line]
    return {
        "epoch_seconds": metrics["train_seconds"],
        "total_seconds": metrics["total_seconds"],
        "test_text_to_image_R@1": metrics["test"]["text_to_image_R@1"],
        "threads_told": told,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated row names")
    parser.add_argument("--repeats", type=int, default=1, help="runs per row (the median is reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "busy_machine.json")
    args = parser.parse_args()
    load_before = warn_if_busy()
    runs: dict[str, list[dict]] = {name: [] for name in args.rows.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        one_run(Path(tmp) / "warm", ["--no-reference"], {}, busy=False)  # fills the feature cache, not counted
        for repeat in range(args.repeats):
            for name, done in runs.items():
                busy, flags, env = ROWS[name]
                done.append(one_run(Path(tmp) / f"{name.replace(' ', '-')}-{repeat}", flags, env, busy))
                print(
                    f"{name:24s} epoch {done[-1]['epoch_seconds']:6.1f} s   whole command "
                    f"{done[-1]['total_seconds']:6.1f} s   R@1 {done[-1]['test_text_to_image_R@1']:.2f}",
                    flush=True,
                )
    rows = {
        name: {
            "epoch_seconds": statistics.median(r["epoch_seconds"] for r in done),
            "total_seconds": statistics.median(r["total_seconds"] for r in done),
            "runs": done,
        }
        for name, done in runs.items()
    }
    idle_best = min(r["epoch_seconds"] for n, r in rows.items() if n.startswith("idle"))
    for name, row in rows.items():
        row["epoch_vs_idle_best"] = row["epoch_seconds"] / idle_best
    for name, row in rows.items():
        print(
            f"{name:24s} median epoch {row['epoch_seconds']:6.1f} s = {row['epoch_vs_idle_best']:.2f}x the idle best"
        )
    write_json(args.out, {"rows": rows, "idle_best_epoch_seconds": idle_best, "machine": machine_meta(load_before)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
