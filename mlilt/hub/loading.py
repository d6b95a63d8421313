"""``mlilt.load``: a ready model from a local adapter or run folder, or from a Hub repository."""

from __future__ import annotations

from pathlib import Path

from mlilt.hub.adapter_files import load_folder
from mlilt.hub.transport import download
from mlilt.model import DualEncoder


def load(path: str | Path, revision: str | None = None) -> DualEncoder:
    """A ready :class:`~mlilt.model.DualEncoder` from an adapter or run folder, or a Hub id such as ``user/mlilt-sw``.

    A path that exists locally is loaded from disk; anything else is fetched from the Hugging Face Hub through
    its cache (:func:`mlilt.hub.transport.download`), at ``revision`` (branch, tag or commit) if given. The base
    towers are loaded by name, then the adapter, checked against them.
    """
    folder = Path(path) if Path(path).exists() else download(str(path), revision=revision)
    return load_folder(folder)
