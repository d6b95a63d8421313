"""Matplotlib for files, not screens: the one place the Agg backend is chosen before pyplot is imported."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt"]
