"""Files that ship inside the package: the recipes (``configs/``) and the language files (``languages/``).

In the repository both folders stay at the top (the agreed layout); ``mlilt/bundled/`` holds links to them,
which the wheel build turns into real files. ``importlib.resources`` finds them the same way in an editable
install, a wheel install and a source checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def bundled_folder(name: str) -> Path:
    """``configs`` or ``languages`` as shipped with the installed package."""
    return Path(str(files("mlilt") / "bundled" / name))


def configs_dir() -> Path:
    """The recipes: ``configs/*.yaml``."""
    return bundled_folder("configs")


def languages_dir() -> Path:
    """One file a language: ``languages/*.yaml``."""
    return bundled_folder("languages")
