"""Token ids of many captions as two flat arrays, tokenised in blocks and kept on disk for the next run.

A million captions as Python lists of ints take about half a gigabyte; as one ``int32`` array of ids and one of
offsets they take about 50 MB. :func:`tokenize_all` tokenises in blocks (never a million lists at once) and, for
large sets, keeps the result in the cache under a fingerprint of the tokenizer and the captions (with checksums:
a damaged copy is tokenised again, never used), so a second run on the same captions loads it instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mlilt.cache import cache_dir, save_array, write_atomically

BLOCK = 8192  # captions tokenised at once
CACHE_FROM = 20_000  # captions from which the result is kept on disk (below it tokenising takes under a second)


class TokenTable:
    """Unpadded token ids of a list of captions: ``table[i]`` is caption ``i``'s ids (an int32 array)."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray):
        self.ids, self.offsets = ids, offsets  # caption i: ids[offsets[i]:offsets[i + 1]]

    @classmethod
    def from_lists(cls, token_lists: Sequence[Sequence[int]]) -> TokenTable:
        lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
        offsets = np.zeros(len(token_lists) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter((i for t in token_lists for i in t), dtype=np.int32, count=int(offsets[-1]))
        return cls(ids, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, TokenTable)
            and np.array_equal(self.offsets, other.offsets)
            and np.array_equal(self.ids, other.ids)
        )


def tokenize_all(
    texts: Sequence[str], tokenize: Callable[[list[str]], list[list[int]]], fingerprint: str | None = None
) -> TokenTable:
    """Token ids of ``texts``, tokenised ``BLOCK`` at a time.

    Args:
        texts: The captions.
        tokenize: Texts -> unpadded token id lists (the text tower's ``token_ids``).
        fingerprint: What decides the ids besides the texts (tokenizer, prefix, length limit); with it, a set of
            :data:`CACHE_FROM` captions or more is kept in the cache and loaded from there next time.
    """
    folder = _cache_folder(texts, fingerprint) if fingerprint and len(texts) >= CACHE_FROM else None
    if folder is not None and (folder / "digest.json").is_file():
        kept = _load(folder)
        if kept is not None and len(kept) == len(texts):
            return kept
    blocks = [TokenTable.from_lists(tokenize(list(texts[i : i + BLOCK]))) for i in range(0, len(texts), BLOCK)]
    table = _concatenate(blocks)
    if folder is not None:
        _save(folder, table)
    return table


def _concatenate(blocks: list[TokenTable]) -> TokenTable:
    if not blocks:
        return TokenTable(np.empty(0, np.int32), np.zeros(1, np.int64))
    starts = np.cumsum([0] + [len(b.ids) for b in blocks[:-1]])
    offsets = np.concatenate([blocks[0].offsets[:1]] + [b.offsets[1:] + s for b, s in zip(blocks, starts)])
    return TokenTable(np.concatenate([b.ids for b in blocks]), offsets)


def _cache_folder(texts: Sequence[str], fingerprint: str) -> Path:
    digest = hashlib.sha256(fingerprint.encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return cache_dir("tokens") / digest.hexdigest()[:24]


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _save(folder: Path, table: TokenTable) -> None:
    """Both arrays, each written atomically, then their checksums (whose presence says both are complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in (("ids", table.ids), ("offsets", table.offsets)):
        write_atomically(folder / f"{name}.npy", lambda tmp, array=array: save_array(tmp, array))
    digests = json.dumps({"ids": _digest(table.ids), "offsets": _digest(table.offsets)})
    write_atomically(folder / "digest.json", lambda tmp: tmp.write_text(digests, encoding="utf-8"))


def _load(folder: Path) -> TokenTable | None:
    """The kept table if it is whole and matches its checksums; None (tokenise again) otherwise."""
    try:
        recorded = json.loads((folder / "digest.json").read_text(encoding="utf-8"))
        ids, offsets = np.load(folder / "ids.npy"), np.load(folder / "offsets.npy")
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if _digest(ids) != recorded.get("ids") or _digest(offsets) != recorded.get("offsets"):
        return None
    return TokenTable(ids, offsets)
