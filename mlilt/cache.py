"""Where mlilt keeps what it builds once (converted weights, rendered pictures, frozen features), and how it
checks that what it finds there is what it wrote: content checksums recorded at creation."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


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


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` a temporary file beside ``path``, then put it in place at once: a reader sees the old file or
    the whole new one, and a kill leaves at most a hidden ``.tmp`` file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` to exactly ``path`` (a temporary name gets no ``.npy`` added)."""
    with open(path, "wb") as handle:
        np.save(handle, np.asarray(array))


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_digests(folder: Path, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder`` (but ``leave_out``), to record at creation."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in leave_out)
    return {str(p.relative_to(folder)): file_sha256(p) for p in files}


def damaged_files(folder: Path, recorded: dict[str, str]) -> list[str]:
    """The recorded files that are missing or whose content no longer matches their checksum."""
    damaged = []
    for name, digest in recorded.items():
        path = folder / name
        if not path.is_file() or file_sha256(path) != digest:
            damaged.append(name)
    return damaged
