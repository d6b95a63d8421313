"""Shared by the benchmark scripts: is the machine busy enough that timings mean little?"""

from __future__ import annotations

import os
import sys


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
