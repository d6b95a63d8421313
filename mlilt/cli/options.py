"""Flags several commands share."""

from __future__ import annotations

import argparse

from mlilt.errors import ConfigError
from mlilt.threads import fit_threads


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: one per usable CPU, fewer while other processes keep CPUs busy; "
        "OMP_NUM_THREADS also fixes it)",
    )


def use_threads(args: argparse.Namespace, recipe_threads: int = 0) -> None:
    """Fit torch's threads to the machine (or to ``--threads``, else a recipe's ``num_threads``). The choice is
    said once the command's input has been checked (:func:`mlilt.threads.describe`), so a typo still gets one
    line; a change under load is said when it happens."""
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    fit_threads(args.threads or recipe_threads or None)
