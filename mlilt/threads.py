"""How many threads torch computes with: fitted to the CPUs this process may use and to what other processes take.

torch starts one OpenMP thread per CPU it sees. When another process keeps one of those CPUs busy (a browser, an
IDE, a second job), every parallel operation waits for its slowest thread, which now shares a core: on the
project's 2-core machine a one-epoch ``mlilt adapt`` took 103 s next to a busy loop with 2 threads and 36 s with
one (docs/benchmarks.md, "A busy machine"). So, unless the user chose a number (``--threads`` or
``OMP_NUM_THREADS``), mlilt

- starts with one thread per CPU this process may use: its CPU affinity, capped by a cgroup CPU quota (a
  container limited to 2 CPUs on a 64-CPU host gets 2 threads, not 64) and by torch's own choice (physical
  cores: hyper-threads slow matrix products down);
- every few seconds of work, reads how busy those CPUs were (``/proc/stat``) less what this process used itself,
  and gives up one thread per CPU the other processes keep busy (never fewer than one); it takes them back when
  those processes stop.

Long loops call :func:`keep_fitted` (a clock check when it is not yet time); nothing happens unless a command
called :func:`fit_threads` first, so the library used from Python leaves torch's threads alone.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

TORCH_DEFAULT_THREADS = torch.get_num_threads()  # what torch chose on its own (physical cores), at import
CHECK_EVERY_S = 3.0  # how often the load is read again; short enough to follow a laptop, long enough to be cheap
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity, capped by the cgroup's CPU quota when one is set."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


CGROUP_ROOT, PROC_CGROUP = Path("/sys/fs/cgroup"), Path("/proc/self/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPUs a cgroup quota allows this process (cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``); None if none."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: "0::/path"
            quota = _read_quota(root / path.lstrip("/") / "cpu.max")
        elif "cpu" in controllers.split(","):
            folder = root / controllers / path.lstrip("/")
            quota = _read_quota(folder / "cpu.cfs_quota_us", folder / "cpu.cfs_period_us")
        else:
            continue
        if quota:
            return quota
    return None


def _read_quota(quota_file: Path, period_file: Path | None = None) -> float | None:
    try:
        if period_file is None:  # v2: "max 100000" or "200000 100000"
            quota, period = quota_file.read_text().split()
        else:
            quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
    except (OSError, ValueError):
        return None
    if quota in ("max", "-1") or float(period) <= 0:
        return None
    return float(quota) / float(period)


def busy_jiffies(cpus: set[int], stat: Path = Path("/proc/stat")) -> int | None:
    """Clock ticks the CPUs in ``cpus`` have spent busy since boot (every process), or None where unknown."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in values[:8])
        busy += user + nice + system + irq + softirq + steal
    return busy


def threads_for(usable: int, others_busy: float) -> int:
    """Threads to use when other processes keep ``others_busy`` of ``usable`` CPUs busy (at least one)."""
    return max(1, min(usable, math.floor(usable - others_busy + 0.5)))


@dataclass
class ThreadFitter:
    """Follows the load of this process's CPUs and keeps torch's thread count fitted to the free ones.

    Args:
        usable: CPUs this process may use.
        adapt: Follow the load (False when the user fixed the number).
        log: Where a change is told.
    """

    usable: int
    adapt: bool = True
    log: Callable[[str], None] = field(default=lambda message: tqdm.write(message, file=sys.stderr))
    _cpus: set[int] = field(default_factory=set)
    _last: tuple[float, float, int] | None = None  # (wall, this process's CPU seconds, busy ticks of _cpus)
    chosen: str = ""  # the line saying what was chosen at the start
    changes: list[dict] = field(default_factory=list)  # each change: when, to how many, and why
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self):
        self._cpus = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, int] | None:
        busy = busy_jiffies(self._cpus) if self._cpus else None
        return None if busy is None else (time.monotonic(), time.process_time(), busy)

    def others_busy(self) -> float | None:
        """CPUs other processes kept busy since the last reading (None when it cannot be read or it is too soon)."""
        now = self._sample()
        if now is None or self._last is None or now[0] - self._last[0] < CHECK_EVERY_S:
            return None
        wall, mine, busy = (a - b for a, b in zip(now, self._last))
        self._last = now
        return max(0.0, busy / USER_HZ / wall - mine / wall)

    def check(self) -> None:
        """Re-fit the thread count if it is time to; a cheap clock check otherwise."""
        if not self.adapt or self._last is None or time.monotonic() - self._last[0] < CHECK_EVERY_S:
            return
        others = self.others_busy()
        if others is None:
            return
        wanted = threads_for(self.usable, others)
        if wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
            after = round(time.monotonic() - self._started, 1)
            self.changes.append({"after_s": after, "threads": wanted, "others_busy": round(others, 2)})
            self.log(
                f"mlilt: other processes keep {others:.1f} of {self.usable} CPUs busy: torch now computes with "
                f"{wanted} thread{'s' * (wanted > 1)}"
            )


_fitter: ThreadFitter | None = None


def fit_threads(requested: int | None = None, log: Callable[[str], None] | None = None) -> str:
    """Set torch's threads for this process (a command's start) and return a line saying what was chosen (also
    given by :func:`describe` later).

    ``requested`` (``--threads``) or ``OMP_NUM_THREADS`` fix the number; otherwise it starts at the usable CPUs
    and follows the load (see the module docstring).
    """
    global _fitter
    usable = min(usable_cpus(), TORCH_DEFAULT_THREADS)  # torch counts physical cores: no hyper-threads added
    chosen_by = "--threads" if requested else "OMP_NUM_THREADS" if os.environ.get("OMP_NUM_THREADS") else None
    if requested:
        torch.set_num_threads(requested)
    elif chosen_by is None:
        torch.set_num_threads(usable)
    kwargs = {"log": log} if log else {}
    _fitter = ThreadFitter(usable, adapt=chosen_by is None, **kwargs)
    threads = torch.get_num_threads()
    if chosen_by:
        _fitter.chosen = f"torch threads: {threads} (set by {chosen_by}; {usable} CPUs usable)"
    else:
        _fitter.chosen = f"torch threads: {threads} ({usable} CPUs usable; fewer while other processes keep CPUs busy)"
    return _fitter.chosen


def describe() -> str | None:
    """What :func:`fit_threads` chose for this process (None when it was not called)."""
    return _fitter.chosen if _fitter is not None else None


def thread_record() -> dict | None:
    """What this process's thread count was and how it changed, for a run's ``metrics.json`` (None when
    :func:`fit_threads` was not called). The count can change a computation's last bits: a run whose count changed
    is not bit-for-bit repeatable; ``--threads`` fixes it."""
    if _fitter is None:
        return None
    return {"chosen": _fitter.chosen, "changes": list(_fitter.changes)}


def keep_fitted() -> None:
    """Called from long loops: re-fits the thread count every few seconds once :func:`fit_threads` ran."""
    if _fitter is not None:
        _fitter.check()
