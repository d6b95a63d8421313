"""Where mlilt keeps what it builds once: converted weights, rendered pictures, frozen features."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache folder: ``$MLILT_CACHE`` if set, else ``$XDG_CACHE_HOME/mlilt`` or ``~/.cache/mlilt``."""
    if os.environ.get("MLILT_CACHE"):
        root = Path(os.environ["MLILT_CACHE"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlilt"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    """A sub-folder of the cache, created on demand."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
