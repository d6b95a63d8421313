"""The installed mlilt's version: written here once; ``pyproject.toml`` and the adapter files read it."""

__version__ = "0.1.0"
