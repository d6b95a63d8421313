"""The files of the frozen-feature cache: float32 rows in safetensors files, read a few rows at a time.

Every file is a safetensors file with one tensor, ``features`` (rows x dim, float32), and in its metadata the
SHA-256 of each row's picture (``hashes``, a JSON list) and the SHA-256 of the feature bytes (``sha256``). Two
kinds live in a store's folder:

- ``shard-*.safetensors``: what one fill batch computed (at most 64 pictures), written atomically as soon as it
  is computed, so a killed fill loses at most the batch it was computing;
- ``pack-*.safetensors``: many shards merged into one large file (:func:`write_pack`, streamed: never more than
  one shard in memory).

A file is checked before its rows are used (:meth:`RowFile.verify`: readable, the size its header promises,
the checksum, finite values), then read by row with ``os.pread``: the features are neither loaded whole nor
mapped into this process's memory (a mapping's touched pages count as the process's resident memory), so
reading 100,000 pictures' features adds no more than the rows asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlilt.errors import first_line

ROW_DTYPE = np.dtype("<f4")
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
VERIFY_BLOCK_BYTES = 1 << 24
PLACEHOLDER_DIGEST = "0" * 64  # a checksum's length, in the header until the rows are written


@dataclass
class RowFile:
    """One shard or pack: where its rows start, how many, for which pictures."""

    path: Path
    hashes: list[str]
    offset: int  # byte offset of row 0
    dim: int
    sha256: str

    @property
    def rows(self) -> int:
        return len(self.hashes)

    @property
    def row_bytes(self) -> int:
        return self.dim * ROW_DTYPE.itemsize

    @classmethod
    def open(cls, path: Path) -> RowFile:
        """Read a file's header.

        Raises:
            FileNotFoundError: It is gone (merged into a pack by another process meanwhile).
            ValueError: It is not a feature file this cache wrote, or its header is damaged.
        """
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ValueError("unreadable: shorter than a header")
            (size,) = struct.unpack("<Q", head)
            if size > MAX_HEADER_BYTES:
                raise ValueError("unreadable: implausible header size")
            try:
                header = json.loads(handle.read(size))
                tensor, metadata = header["features"], header["__metadata__"]
                hashes, digest = json.loads(metadata["hashes"]), metadata["sha256"]
                begin, end = tensor["data_offsets"]
                rows, dim = tensor["shape"]
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
                raise ValueError(f"unreadable: {first_line(err)}") from None
        if tensor.get("dtype") != "F32" or rows != len(hashes) or end - begin != rows * dim * ROW_DTYPE.itemsize:
            raise ValueError("its rows are incomplete")
        return cls(Path(path), hashes, 8 + size + begin, dim, digest)

    def verify(self) -> None:
        """Read every byte once: the size, the checksum and finite values. ValueError says what is wrong."""
        expected = self.rows * self.row_bytes
        if self.path.stat().st_size != self.offset + expected:
            raise ValueError("its size does not match its header (cut off?)")
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            left = expected
            while left:
                block = handle.read(min(VERIFY_BLOCK_BYTES, left))
                if not block:
                    raise ValueError("cut off")
                digest.update(block)
                if not np.isfinite(np.frombuffer(block, ROW_DTYPE)).all():
                    raise ValueError("it holds values that are not finite")
                left -= len(block)
        if digest.hexdigest() != self.sha256:
            raise ValueError("its features do not match their checksum")

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The given rows (any order, repeats allowed): one read per run of consecutive rows, each straight into
        its place in the result when the run is one row (a training batch of random rows costs one system call
        per row and no copy)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        if not len(rows):
            return out
        size = self.row_bytes
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        starts = np.flatnonzero(np.r_[True, np.diff(ordered) != 1])
        ends = np.r_[starts[1:], len(ordered)]
        flat = memoryview(out.reshape(-1).view(np.uint8))
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for start, end, first, place in zip(
                starts.tolist(), ends.tolist(), ordered[starts].tolist(), order[starts].tolist()
            ):
                where, count = self.offset + first * size, end - start
                if count == 1:
                    complete = os.preadv(fd, [flat[place * size : (place + 1) * size]], where) == size
                else:
                    data = os.pread(fd, count * size, where)
                    complete = len(data) == count * size
                    if complete:
                        out[order[start:end]] = np.frombuffer(data, ROW_DTYPE).reshape(count, self.dim)
                if not complete:
                    raise OSError(f"{self.path} was cut off while in use")
        finally:
            os.close(fd)
        return out

    def read_all(self) -> np.ndarray:
        return self.read(np.arange(self.rows))


def _header(hashes: list[str], dim: int, digest: str) -> bytes:
    """A feature file's safetensors header; its length does not depend on ``digest`` (64 hex digits), so a file
    can be written with a placeholder and its checksum put in once its rows are."""
    total = len(hashes) * dim * ROW_DTYPE.itemsize
    header = {
        "__metadata__": {"hashes": json.dumps(hashes), "sha256": digest},
        "features": {"dtype": "F32", "shape": [len(hashes), dim], "data_offsets": [0, total]},
    }
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return encoded + b" " * (-len(encoded) % 8)  # rows start 8-byte aligned, as safetensors writes them


def write_pack(path: Path, parts: list[RowFile]) -> RowFile:
    """Merge ``parts`` into one file at ``path`` (atomically), reading each part once; returns it opened.

    The header goes first with a placeholder checksum, then the rows (hashed as they are written), then the
    header again with the checksum: same length, so the rows do not move.
    """
    dim = parts[0].dim
    if any(p.dim != dim for p in parts):
        raise ValueError("parts of different widths cannot be packed together")
    hashes = [h for part in parts for h in part.hashes]
    header = _header(hashes, dim, PLACEHOLDER_DIGEST)
    digest = hashlib.sha256()
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        for part in parts:
            rows = part.read_all().astype(ROW_DTYPE, copy=False).tobytes()
            digest.update(rows)
            handle.write(rows)
        handle.seek(8)
        handle.write(_header(hashes, dim, digest.hexdigest()))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return RowFile.open(path)


class RowWriter:
    """A new feature file of a known number of rows, written at any positions, then checksummed and opened.

    For features computed in an order other than their rows' (captions sorted by length, say) and too many to
    hold in memory. Rows never written stay zero.
    """

    def __init__(self, path: Path, rows: int, dim: int, hashes: list[str] | None = None):
        self.path, self.rows, self.dim = Path(path), rows, dim
        self.hashes = hashes if hashes is not None else [str(i) for i in range(rows)]
        header = _header(self.hashes, dim, PLACEHOLDER_DIGEST)
        self.offset = 8 + len(header)
        with open(self.path, "wb") as handle:
            handle.write(struct.pack("<Q", len(header)) + header)
            handle.truncate(self.offset + rows * dim * ROW_DTYPE.itemsize)
        self._fd = os.open(self.path, os.O_RDWR)

    def write(self, positions: np.ndarray, rows: np.ndarray) -> None:
        """Rows at the given positions (one ``pwrite`` per row)."""
        rows = np.ascontiguousarray(rows, dtype=ROW_DTYPE)
        size = self.dim * ROW_DTYPE.itemsize
        for position, row in zip(np.asarray(positions).tolist(), rows):
            os.pwrite(self._fd, row.tobytes(), self.offset + position * size)

    def finish(self) -> RowFile:
        """Record the rows' checksum in the header (same length: 64 hex digits) and open the file."""
        digest = hashlib.sha256()
        left, at = self.rows * self.dim * ROW_DTYPE.itemsize, self.offset
        while left:
            block = os.pread(self._fd, min(VERIFY_BLOCK_BYTES, left), at)
            digest.update(block)
            left, at = left - len(block), at + len(block)
        os.pwrite(self._fd, _header(self.hashes, self.dim, digest.hexdigest()), 8)
        os.close(self._fd)
        return RowFile.open(self.path)
