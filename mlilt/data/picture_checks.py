"""Picture checks remembered across runs, so a rerun on a large set does not decode every picture again.

Before training, every picture is opened and decoded once (:func:`mlilt.data.validate.validate_records`): a
truncated file should fail there, not in the middle of training. For 100,000 photographs that is minutes on
every run. What each file was found to be is kept in the cache (``checks/pictures.sqlite``), keyed the way
git's index and rsync know a file has not changed: its absolute path, size and modification time in
nanoseconds (and the pixel limit it was checked against). A file written since is checked again.

The store is only a cache: one that cannot be read is named, removed and built again, and one that cannot be
written (locked by another process for too long, a read-only cache) just means the pictures are checked again
next time. No run fails because of it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from mlilt.cache import cache_dir

WAIT_FOR_LOCK_S = 30.0  # another process (a torchrun rank) writing its checks
NO_LIMIT = -1  # max_pixels None, as stored


class PictureChecks:
    """Remembered results of a picture check: ``checks.problem(path, max_pixels, check)``, then :meth:`save`."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else cache_dir("checks") / "pictures.sqlite"
        self._db = self._open()
        self._new: list[tuple[str, int, int, int, str | None]] = []

    def _open(self) -> sqlite3.Connection | None:
        for attempt in range(2):
            try:
                db = sqlite3.connect(self.path, timeout=WAIT_FOR_LOCK_S)
                db.execute(
                    "CREATE TABLE IF NOT EXISTS checks (path TEXT NOT NULL, max_pixels INTEGER NOT NULL, "
                    "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, problem TEXT, PRIMARY KEY (path, max_pixels))"
                )
                db.execute("SELECT path, max_pixels, size, mtime_ns, problem FROM checks LIMIT 1").fetchall()
                return db
            except sqlite3.DatabaseError as err:
                if attempt or not self.path.exists() or "locked" in str(err):
                    return None  # cannot be used now (read-only, or held by another process): check every picture
                print(
                    f"mlilt: the picture-check cache {self.path} cannot be read ({err}); removed, pictures are "
                    "checked again",
                    file=sys.stderr,
                )
                self.path.unlink(missing_ok=True)
        return None

    def problem(self, path: str, max_pixels: int | None, check: Callable[[str, int | None], str | None]) -> str | None:
        """``check(path, max_pixels)``'s answer: remembered when the file is unchanged, else computed (and kept)."""
        try:
            stat = os.stat(path)
        except (OSError, ValueError):  # missing (or not a path): nothing to remember
            return check(path, max_pixels)
        key = (os.path.abspath(path), NO_LIMIT if max_pixels is None else int(max_pixels))
        if self._db is not None:
            try:
                row = self._db.execute(
                    "SELECT size, mtime_ns, problem FROM checks WHERE path = ? AND max_pixels = ?", key
                ).fetchone()
            except sqlite3.DatabaseError:
                row = None
            if row is not None and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
                return row[2]
        found = check(path, max_pixels)
        self._new.append((*key, stat.st_size, stat.st_mtime_ns, found))
        return found

    def save(self) -> None:
        """Keep what was checked in this run (a cache that cannot be written is left as it is)."""
        if self._db is None or not self._new:
            return
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO checks VALUES (?, ?, ?, ?, ?)", self._new)
        except sqlite3.DatabaseError:
            pass  # locked for too long, or read-only: these pictures are checked again next time
        self._new = []

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
