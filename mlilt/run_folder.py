"""Run folders: owned by one run at a time, never over a finished run or someone else's files, resumed with the
run's own settings.

- A run writes into its folder only while it holds ``.mlilt-run.lock`` (created atomically, with its pid and
  host); a second run into the same folder is refused while the first one lives, and a lock left by a killed
  run is taken over.
- ``--out`` may be new, empty, or a run folder; a folder holding anything else (a source tree, a data set) is
  refused, so no run ever writes over files it did not make.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlilt.config import RunConfig
from mlilt.constants import (
    CHECKPOINT_NAME,
    METRICS_NAME,
    RUN_CONFIG_NAME,
    RUN_ENTRIES,
    RUN_ENTRY_SUFFIXES,
    RUN_LOCK_NAME,
    STEP_METRICS_NAME,
)
from mlilt.errors import ConfigError, NotFoundError, RunFolderError, first_line
from mlilt.training.checkpoint import read_log, verify_checkpoint


def resolve_out_dir(out: Path | None, cfg: RunConfig, resume: bool) -> Path:
    """Default ``runs/<lang>-<method>``; a finished run is never overwritten, an interrupted one needs --resume."""
    base = Path(out) if out else Path("runs") / f"{cfg.data.lang}-{cfg.model.text.method}"
    if resume:
        if not (base / CHECKPOINT_NAME).exists():
            raise NotFoundError(f"--resume: no checkpoint in {base}")
        check_free(base)
        verify_checkpoint(base / CHECKPOINT_NAME)  # before anything trains again
        read_log(base / STEP_METRICS_NAME)
        return base
    candidate, n = base, 1
    while (candidate / CHECKPOINT_NAME).exists() or (candidate / METRICS_NAME).exists():
        if not (candidate / METRICS_NAME).exists():
            check_free(candidate)
            raise RunFolderError(
                f"{candidate} holds an interrupted run: continue it with --resume "
                f"(--out {candidate}), or choose another --out"
            )
        if out:
            raise RunFolderError(f"{candidate} already holds a finished run; choose another --out")
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    check_owned(candidate)
    check_free(candidate)
    return candidate


def check_owned(folder: Path) -> None:
    """Refuse a folder that exists and holds anything a run does not write (or is not a folder at all)."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise RunFolderError(f"--out {folder} is a file, not a folder; choose another --out")
    foreign = sorted(
        p.name for p in folder.iterdir() if p.name not in RUN_ENTRIES and not p.name.endswith(RUN_ENTRY_SUFFIXES)
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RunFolderError(
            f"--out {folder} already holds files a run does not write ({shown}); mlilt writes only into a new or "
            "empty folder or a run folder. Choose another --out."
        )


def _holder(folder: Path) -> dict | None:
    """The living run holding ``folder``'s lock, or None: no lock, our own, or one left by a run that is gone."""
    try:
        holder = json.loads((folder / RUN_LOCK_NAME).read_text(encoding="utf-8"))
        pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no lock, or one cut short: nobody holds it
    if host != socket.gethostname():
        return holder  # another machine's run cannot be checked from here: assume it lives
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, under another user
    return holder


def check_free(folder: Path) -> None:
    """Refuse a folder another living run is writing into."""
    holder = _holder(folder)
    if holder:
        raise RunFolderError(
            f"another mlilt run (pid {holder['pid']} on {holder['host']}, started {holder.get('started', '?')}) is "
            f"writing into {folder}; wait for it to finish, or choose another --out"
        )


@contextmanager
def run_lock(folder: Path, resume: bool = False) -> Iterator[None]:
    """Hold ``folder``'s run lock while the block runs (the folder is created if needed).

    Once the lock is held, the folder is checked again: another run may have finished in it (or left an
    interrupted run) since :func:`resolve_out_dir` looked, and a new run never writes over that.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / RUN_LOCK_NAME
    check_free(folder)
    if lock.exists():
        print(f"mlilt: {lock} was left by a run that is gone; taking it over", file=sys.stderr)
        lock.unlink(missing_ok=True)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:  # another run took it between our check and now
        check_free(folder)
        raise RunFolderError(f"another mlilt run took {lock} first; choose another --out") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(holder, handle)
    try:
        if not resume and ((folder / METRICS_NAME).exists() or (folder / CHECKPOINT_NAME).exists()):
            raise RunFolderError(f"another run wrote into {folder} while this one was starting; choose another --out")
        yield
    finally:
        lock.unlink(missing_ok=True)


def resumed_config(out_dir: Path, cfg: RunConfig, given: list[str]) -> RunConfig:
    """The configuration an interrupted run was started with; flags given again must agree with it."""
    path = out_dir / RUN_CONFIG_NAME
    if not path.exists():
        return cfg
    try:
        saved = RunConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as err:
        raise RunFolderError(
            f"--resume: {path} is damaged ({first_line(err)}); the run cannot be continued: start it again with "
            "another --out"
        ) from None
    old, new = saved.to_dict(), cfg.to_dict()

    def value(tree: dict, dotted: str):
        for key in dotted.split("."):
            tree = tree[key]
        return tree

    conflicts = [
        f"{k}: run has {value(old, k)!r}, flag says {value(new, k)!r}" for k in given if value(old, k) != value(new, k)
    ]
    if conflicts:
        raise ConfigError(
            f"--resume: {out_dir} was started with other settings ({'; '.join(conflicts)}). "
            "Resume with the same flags (or none), or start a new run with another --out."
        )
    return saved
