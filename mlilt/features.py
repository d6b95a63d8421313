"""The frozen-feature cache: a frozen vision tower's features are computed once per picture and kept on disk.

Cache entries are keyed by

- the tower: its name plus a hash of every weight, its data config and transform, the view and the
  background transparent pictures are composited on;
- the picture: a SHA-256 of the file's bytes (so a renamed file still hits, an edited one misses).

A store is one folder of row files (:mod:`mlilt.feature_files`): small shards written as a fill computes them,
merged into large packs once there are many. Every file is checked when a store opens it: one that cannot be
read, does not match its checksum or holds a non-finite value is named, removed, and its pictures are computed
again; it is never used. Rows are read by index when asked for (:class:`FeatureTable`), so training on 100,000
pictures does not hold 100,000 rows in memory; a table small enough (:data:`IN_MEMORY_BYTES`) is read once.

Several processes may fill one store at once, each its share (``shard=(i, n)``: ``mlilt features --shard i/n``,
or the ranks of a ``torchrun``); the shards they write are merged when the store is next used alone. A store's
readers hold a shared lock on it; merging takes it exclusively, so files are never merged under a reader.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from tqdm.auto import tqdm

from mlilt.cache import cache_dir, file_sha256
from mlilt.errors import first_line
from mlilt.feature_files import RowFile, write_pack
from mlilt.threads import keep_fitted

if TYPE_CHECKING:  # annotations only: the data layer imports this module, and towers sit above it
    from mlilt.towers.vision import VisionTower

FEATURE_FORMAT = "2"  # 2: shards carry a checksum of their features; the background is part of the key
# On CPU, small forward batches are faster per picture: EfficientNet-Lite0 on 2 cores ran ~60 pictures/s in
# batches of 2-4 and ~26 in batches of 64 (benchmarks/inference.py, docs/benchmarks.md). Shards still hold
# ``batch_size`` pictures.
CPU_FORWARD_BATCH = 4
MERGE_AT_SHARDS = 16  # small shards in a store from which they are merged into a pack
PACK_ROWS = 200_000  # at most this many pictures per pack (1 GB at EfficientNet-Lite0's 1,280 features)
IN_MEMORY_BYTES = 256 * 2**20  # a table up to this size is read into memory once; larger ones row by row


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why (only when asked to skip them)

    def __str__(self) -> str:
        skipped = f", {len(self.unreadable)} unreadable skipped" if self.unreadable else ""
        return f"{self.hits} cached, {self.misses} computed{skipped}"


def tower_fingerprint(tower: VisionTower, view: str) -> str:
    """A short hash of everything that determines a tower's features for a picture."""
    digest = hashlib.sha256()
    digest.update(
        f"{FEATURE_FORMAT}|{tower.name}|{view}|{sorted(tower.data_config.items())}|{tower.transform}|"
        f"{tower.background}".encode()
    )
    for name, tensor in tower.model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


class FeatureTable:
    """The features of a list of pictures, row ``i`` for picture ``i``, indexed like a tensor.

    Rows come from the store's files when indexed (or from one tensor, for a table read into memory).
    """

    def __init__(self, files: list[RowFile], file_of: np.ndarray, row_of: np.ndarray, dim: int, owner=None):
        self._files, self._file_of, self._row_of, self.dim = files, file_of, row_of, dim
        self._owner = owner  # the store: its shared lock keeps these files from being merged away while in use
        self._tensor: torch.Tensor | None = None

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor) -> FeatureTable:
        table = cls([], np.zeros(len(tensor), np.int32), np.arange(len(tensor)), tensor.shape[1])
        table._tensor = tensor
        return table

    def __len__(self) -> int:
        return len(self._row_of)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.dim)

    @property
    def in_memory(self) -> bool:
        return self._tensor is not None

    def __getitem__(self, index) -> torch.Tensor:
        if self._tensor is not None:
            return self._tensor[index]
        if isinstance(index, int):
            return self[[index]][0]
        positions = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index).reshape(-1)
        if len(self._files) == 1:  # one pack, or a spill file: its rows straight, no regrouping or second copy
            return torch.from_numpy(self._files[0].read(self._row_of[positions]))
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        files = self._file_of[positions]
        for number in np.unique(files):
            chosen = np.nonzero(files == number)[0]
            out[chosen] = self._files[number].read(self._row_of[positions[chosen]])
        return torch.from_numpy(out)

    def loaded(self) -> FeatureTable:
        """This table read into memory (one read per file)."""
        return self if self._tensor is not None else FeatureTable.from_tensor(self[:])

    def batches(self, size: int = 4096):
        """Consecutive blocks of rows, for going through a large table without holding it."""
        for start in range(0, len(self), size):
            yield self[start : start + size]


class FeatureStore:
    """The on-disk features of one (tower, view)."""

    def __init__(self, tower: VisionTower, view: str = "plain", root: Path | None = None):
        self.tower, self.view = tower, view
        self.fingerprint = tower_fingerprint(tower, view)
        self.folder = (
            Path(root) if root else cache_dir("features")
        ) / f"{_safe(tower.name)}-{view}-{self.fingerprint}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.removed: list[Path] = []  # damaged files found (and deleted) when the store opened
        self._lock = os.open(self.folder / "store.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock, fcntl.LOCK_SH)  # released when the store is closed or the process ends
        self._files: list[RowFile] = []
        self._where: dict[str, tuple[int, int]] = {}  # content hash -> (file number, row)
        self._reread()

    def close(self) -> None:
        if getattr(self, "_lock", None) is not None:
            os.close(self._lock)
            self._lock = None

    def __del__(self):
        self.close()

    def _reread(self) -> None:
        """Forget the files known and take in every file on disk, each verified."""
        self._files, self._where = [], {}
        self.refresh()

    def refresh(self) -> None:
        """Take in the files written since the store opened (by this process or others)."""
        known = {f.path.name for f in self._files}
        vanished = False
        for path in sorted(self.folder.glob("pack-*.safetensors")) + sorted(self.folder.glob("shard-*.safetensors")):
            if path.name in known:
                continue
            try:
                row_file = RowFile.open(path)
                row_file.verify()
            except FileNotFoundError:  # merged into a pack meanwhile
                vanished = True
                continue
            except (ValueError, OSError) as err:
                print(
                    f"mlilt: feature cache: {path} is damaged ({err}); removed, its pictures are computed again",
                    file=sys.stderr,
                )
                path.unlink(missing_ok=True)
                self.removed.append(path)
                continue
            number = len(self._files)
            self._files.append(row_file)
            for row, content_hash in enumerate(row_file.hashes):
                self._where.setdefault(content_hash, (number, row))
        if vanished:
            self.refresh()

    def __contains__(self, content_hash: str) -> bool:
        return content_hash in self._where

    def __len__(self) -> int:
        return len(self._where)

    def get(self, content_hash: str) -> torch.Tensor:
        number, row = self._where[content_hash]
        return torch.from_numpy(self._files[number].read(np.array([row]))[0])

    def table(self, hashes: Sequence[str], in_memory_bytes: int = IN_MEMORY_BYTES) -> FeatureTable:
        """The rows of ``hashes`` (all in the store), in that order; read into memory if small enough."""
        where = np.array([self._where[h] for h in hashes], dtype=np.int64).reshape(-1, 2)
        table = FeatureTable(list(self._files), where[:, 0], where[:, 1], self.tower.num_features, owner=self)
        return table.loaded() if len(hashes) * table.dim * 4 <= in_memory_bytes else table

    def add(self, hashes: list[str], features: torch.Tensor) -> None:
        """Write new rows as one shard, atomically (nothing is kept in memory)."""
        features = features.detach().float().cpu().contiguous()
        if not torch.isfinite(features).all():
            raise ValueError(f"the vision tower gave non-finite features for {len(hashes)} pictures; nothing cached")
        shard = self.folder / f"shard-{time.time_ns():020d}-{os.getpid()}.safetensors"
        tmp = self.folder / f".{shard.name}.tmp"
        digest = hashlib.sha256(features.numpy().tobytes()).hexdigest()
        save_file({"features": features}, str(tmp), metadata={"hashes": json.dumps(hashes), "sha256": digest})
        os.replace(tmp, shard)
        number = len(self._files)
        self._files.append(RowFile.open(shard))
        for row, content_hash in enumerate(hashes):
            self._where.setdefault(content_hash, (number, row))

    def merge(self, at_shards: int = MERGE_AT_SHARDS) -> int:
        """Merge the small shards into packs when there are ``at_shards`` or more and no other process has the
        store open. Returns the number of shards merged (0 when nothing was done)."""
        shards = [f for f in self._files if f.path.name.startswith("shard-")]
        if len(shards) < at_shards:
            return 0
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process reads or fills this store: merge another time
            return 0
        try:
            self._reread()  # every file on disk now
            shards = [f for f in self._files if f.path.name.startswith("shard-")]
            if not shards:  # another process merged them meanwhile
                return 0
            small_packs = [f for f in self._files if f.path.name.startswith("pack-") and f.rows < PACK_ROWS // 8]
            remaining = small_packs + shards  # earlier small merges are merged again: a few large packs in time
            while remaining:
                group = _group_by_rows(remaining, PACK_ROWS)
                write_pack(self.folder / f"pack-{time.time_ns():020d}-{os.getpid()}.safetensors", group)
                for shard in group:
                    shard.path.unlink(missing_ok=True)
                remaining = remaining[len(group) :]
            for stale in self.folder.glob(".*.tmp"):  # left by a process killed while writing
                stale.unlink(missing_ok=True)
            self._reread()
            return len(shards)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_SH)


def _group_by_rows(files: list[RowFile], limit: int) -> list[RowFile]:
    group, rows = [], 0
    for row_file in files:
        if group and rows + row_file.rows > limit:
            break
        group.append(row_file)
        rows += row_file.rows
    return group


def picture_hashes(paths: Sequence[str], stats: CacheStats | None = None) -> list[tuple[str, str]]:
    """``(path, content hash)`` of each picture; one that cannot be read goes into ``stats.unreadable`` (or raises,
    without ``stats``)."""
    hashes = []
    for path in paths:
        try:
            hashes.append((path, file_sha256(path)))
        except OSError as err:
            if stats is None:
                raise
            stats.unreadable[path] = first_line(err)
    return hashes


def fill(
    tower: VisionTower,
    paths: Sequence[str],
    view: str = "plain",
    store: FeatureStore | None = None,
    batch_size: int = 64,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    skip_unreadable: bool = False,
) -> CacheStats:
    """Compute and store the features of the pictures of ``paths`` the store does not hold yet.

    Args:
        shard: ``(i, n)``: only every ``n``-th picture from the ``i``-th on (one of ``n`` processes filling the
            same store, each given the same ``paths``).
        skip_unreadable: Name a picture that cannot be read (missing, truncated, not a picture, too large) in
            ``stats.unreadable`` and go on; without it such a picture raises (training data has been validated).

    ``batch_size`` pictures are decoded and written as one shard at a time (a kill loses at most that one); on CPU
    the tower runs on ``CPU_FORWARD_BATCH`` of them at a time.
    """
    store = FeatureStore(tower, view) if store is None else store
    stats = CacheStats()
    mine = list(paths)[shard[0] :: shard[1]] if shard else list(paths)
    hashes = picture_hashes(mine, stats if skip_unreadable else None)
    share = f" (share {shard[0] + 1} of {shard[1]})" if shard else ""
    _compute_missing(tower, hashes, view, store, batch_size, stats, skip_unreadable, progress, share)
    return stats


def image_features(
    tower: VisionTower,
    paths: Sequence[str],
    view: str = "plain",
    batch_size: int = 64,
    store: FeatureStore | None = None,
    progress: bool = True,
    skip_unreadable: bool = False,
) -> tuple[FeatureTable, CacheStats]:
    """Features of every picture in ``paths`` (rows in the same order), computing only the missing ones.

    Takes in what other processes stored meanwhile, merges small shards when there are many, and returns a
    :class:`FeatureTable` (read into memory when small). With ``skip_unreadable`` a picture that cannot be read
    is left out of the rows and named in ``stats.unreadable``; see :func:`fill`.
    """
    store = FeatureStore(tower, view) if store is None else store
    store.refresh()
    stats = CacheStats()
    hashes = picture_hashes(paths, stats if skip_unreadable else None)
    _compute_missing(tower, hashes, view, store, batch_size, stats, skip_unreadable, progress)
    store.merge()
    return store.table([h for p, h in hashes if p not in stats.unreadable]), stats


@torch.no_grad()
def _compute_missing(
    tower: VisionTower,
    hashes: list[tuple[str, str]],
    view: str,
    store: FeatureStore,
    batch_size: int,
    stats: CacheStats,
    skip_unreadable: bool,
    progress: bool,
    share: str = "",
) -> None:
    missing = {h: p for p, h in hashes if h not in store}
    stats.hits, stats.misses = len({h for _, h in hashes}) - len(missing), len(missing)
    if not missing:
        return
    tower.eval()
    device = next(tower.parameters()).device
    todo = list(missing.items())
    desc = f"image features ({view}){share}"
    bar = tqdm(total=len(todo), desc=desc, unit="img", disable=not progress, file=sys.stderr)
    for start in range(0, len(todo), batch_size):
        keep_fitted()
        chunk = todo[start : start + batch_size]
        read = _read_pictures(tower, chunk, view, stats.unreadable if skip_unreadable else None)
        if read:
            pixels = torch.stack([pixel for _, pixel in read]).to(device)
            step = batch_size if device.type == "cuda" else CPU_FORWARD_BATCH
            computed = torch.cat([tower(pixels[i : i + step]) for i in range(0, len(read), step)])
            store.add([h for h, _ in read], computed)
        bar.update(len(chunk))
    bar.close()


def _read_pictures(tower: VisionTower, chunk, view: str, unreadable: dict[str, str] | None):
    """``(hash, pixels)`` of each readable picture of ``chunk``; the others go into ``unreadable`` (or raise)."""
    read = []
    for content_hash, path in chunk:
        try:
            read.append((content_hash, tower.preprocess(tower.open(path), view)))
        except (OSError, ValueError, Image.DecompressionBombError) as err:  # PIL's errors, PictureError
            if unreadable is None:
                raise
            unreadable[path] = first_line(err)
    return read


def spill_folder() -> Path:
    """A new folder for this process's temporary feature files; those of processes that no longer run go."""
    root = cache_dir("spill")
    for folder in root.glob("*-*"):
        pid = folder.name.split("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
