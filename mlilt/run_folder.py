"""Run folders: where a run's files go, never over a finished run, and resuming with the run's own settings."""

from __future__ import annotations

import json
from pathlib import Path

from mlilt.config import RunConfig
from mlilt.constants import CHECKPOINT_NAME, METRICS_NAME, RUN_CONFIG_NAME
from mlilt.errors import ConfigError, NotFoundError, RunFolderError


def resolve_out_dir(out: Path | None, cfg: RunConfig, resume: bool) -> Path:
    """Default ``runs/<lang>-<method>``; a finished run is never overwritten, an interrupted one needs --resume."""
    base = Path(out) if out else Path("runs") / f"{cfg.data.lang}-{cfg.model.text.method}"
    if resume:
        if not (base / CHECKPOINT_NAME).exists():
            raise NotFoundError(f"--resume: no checkpoint in {base}")
        return base
    candidate, n = base, 1
    while (candidate / CHECKPOINT_NAME).exists() or (candidate / METRICS_NAME).exists():
        if not (candidate / METRICS_NAME).exists():
            raise RunFolderError(
                f"{candidate} holds an interrupted run: continue it with --resume "
                f"(--out {candidate}), or choose another --out"
            )
        if out:
            raise RunFolderError(f"{candidate} already holds a finished run; choose another --out")
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def resumed_config(out_dir: Path, cfg: RunConfig, given: list[str]) -> RunConfig:
    """The configuration an interrupted run was started with; flags given again must agree with it."""
    path = out_dir / RUN_CONFIG_NAME
    if not path.exists():
        return cfg
    saved = RunConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
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
