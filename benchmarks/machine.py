"""Shared by the benchmark scripts: what a timing needs next to it (the machine, and how busy it was)."""

from __future__ import annotations

import os
import platform
import sys

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
