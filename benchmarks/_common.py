"""Shared by the benchmark scripts (one copy): the machine and its load, the device, peak memory, mean ± spread,
and writing results. A script imports it as ``from _common import ...`` (its own folder is on ``sys.path``)."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import sys
from pathlib import Path

import torch


def warn_if_busy() -> float:
    """The 1-minute load average; a warning when other work competes for the CPUs (timings then mean little)."""
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1) * 0.5:
        print(
            f"warning: load average {load:.1f} on {os.cpu_count()} CPUs: other jobs compete for the cores; "
            "with more torch threads than free cores, OpenMP calls can slow down several-fold (try --threads 1)",
            file=sys.stderr,
        )
    return load


def machine_meta(load_before: float) -> dict:
    """CPU, torch version and the load average before (given) and after (now) a measurement."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "torch": torch.__version__,
    }


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu`` or ``cuda``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available here")
    return torch.device(name)


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value; NaN when any value is NaN, e.g. a missing history)."""
    if any(math.isnan(v) for v in values):
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def write_json(path: Path, payload) -> None:
    """Results as indented JSON, the folder made if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
