"""The errors a user can fix: bad flags or recipes, missing files, data that cannot be trained on, mismatches.

Every one of them derives from :class:`MliltError`; the command line prints its message (no traceback) and
exits with its ``exit_code``. Each also derives from the built-in exception a Python caller would expect
(``ValueError``, ``FileNotFoundError``, ...), so ``except ValueError`` keeps working in library code.
Anything else that escapes is a bug in mlilt and keeps its traceback.
"""

from __future__ import annotations


class MliltError(Exception):
    """Base of every error caused by input the user can change; the message says what to do."""

    exit_code = 2


class ConfigError(MliltError, ValueError):
    """A recipe, a flag or a setting is wrong (unknown key, wrong type, value out of range)."""


class NotFoundError(MliltError, FileNotFoundError):
    """A file, folder, model or data set that was named does not exist (or cannot be reached offline)."""


class DataError(MliltError, ValueError):
    """Caption data cannot be used as it is (malformed file, no record in the language, too many bad records)."""


class TowerError(MliltError, ValueError):
    """A tower cannot be built from the name given (unknown name, or its weights are not available here)."""


class TuningError(MliltError, ValueError):
    """A tuning method does not fit a tower (e.g. adapters on a convolutional network)."""


class AdapterMismatchError(MliltError, ValueError):
    """An adapter folder does not fit the base model it is loaded onto, or is malformed."""


class NotExportableError(MliltError, ValueError):
    """The adapter's method cannot be merged into plain base weights."""


class RunFolderError(MliltError, FileExistsError):
    """A run folder cannot be used for this run (it holds a finished run, an interrupted one, or other files)."""


class DivergedError(MliltError, FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; the message names the step and what to change."""


class NotFiniteError(MliltError, ValueError):
    """Numbers that must be finite (similarity scores, weights, features) are NaN or infinite."""


class PushError(MliltError, RuntimeError):
    """An upload to the Hugging Face Hub failed; the staged folder is kept."""

    exit_code = 1


class MissingPackageError(MliltError, ModuleNotFoundError):
    """A package a feature needs is not installed; the message gives the pip line."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), for a one-line report."""
    text = str(err).strip()
    return text.splitlines()[0].rstrip(".") if text else type(err).__name__
