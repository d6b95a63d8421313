"""The frozen-feature cache: a frozen vision tower's features are computed once per picture and kept on disk.

Cache entries are keyed by

- the tower: its name plus a hash of every weight, its data config and transform, the view and the
  background transparent pictures are composited on;
- the picture: a SHA-256 of the file's bytes (so a renamed file still hits, an edited one misses).

Features live in shards (``shard-*.safetensors``, each with its pictures' hashes and a SHA-256 of its
features in the metadata), written atomically; later epochs, runs and languages reuse them. Every shard is
checked when a store opens it: one that cannot be read, does not match its checksum or holds a non-finite
value is named, removed, and its pictures are computed again; it is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from mlilt.cache import cache_dir, file_sha256
from mlilt.errors import first_line

if TYPE_CHECKING:  # annotations only: the data layer imports this module, and towers sit above it
    from mlilt.towers.vision import VisionTower

FEATURE_FORMAT = "2"  # 2: shards carry a checksum of their features; the background is part of the key
# On CPU, small forward batches are faster per picture: EfficientNet-Lite0 on 2 cores ran ~60 pictures/s in
# batches of 2-4 and ~26 in batches of 64 (benchmarks/inference.py, docs/benchmarks.md). Shards still hold
# ``batch_size`` pictures.
CPU_FORWARD_BATCH = 4


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


class FeatureStore:
    """The on-disk features of one (tower, view)."""

    def __init__(self, tower: VisionTower, view: str = "plain", root: Path | None = None):
        self.tower, self.view = tower, view
        self.fingerprint = tower_fingerprint(tower, view)
        self.folder = (root or cache_dir("features")) / f"{_safe(tower.name)}-{view}-{self.fingerprint}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._rows: dict[str, torch.Tensor] = {}
        self.removed: list[Path] = []  # damaged shards found (and deleted) when the store opened
        for shard in sorted(self.folder.glob("shard-*.safetensors")):
            try:
                hashes, features = _read_shard(shard)
            except ValueError as err:
                print(
                    f"mlilt: feature cache: {shard} is damaged ({err}); removed, its pictures are computed again",
                    file=sys.stderr,
                )
                shard.unlink(missing_ok=True)
                self.removed.append(shard)
                continue
            self._rows.update(zip(hashes, features))

    def __contains__(self, content_hash: str) -> bool:
        return content_hash in self._rows

    def get(self, content_hash: str) -> torch.Tensor:
        return self._rows[content_hash]

    def add(self, hashes: list[str], features: torch.Tensor) -> None:
        """Keep new rows and write them as one shard, atomically."""
        features = features.detach().float().cpu().contiguous()
        if not torch.isfinite(features).all():
            raise ValueError(f"the vision tower gave non-finite features for {len(hashes)} pictures; nothing cached")
        shard = (
            self.folder / f"shard-{len(list(self.folder.glob('shard-*.safetensors'))):05d}-{os.getpid()}.safetensors"
        )
        tmp = shard.with_suffix(".tmp")
        metadata = {"hashes": json.dumps(hashes), "sha256": _digest(features)}
        save_file({"features": features}, str(tmp), metadata=metadata)
        os.replace(tmp, shard)
        self._rows.update(zip(hashes, features))


def _digest(features: torch.Tensor) -> str:
    return hashlib.sha256(features.numpy().tobytes()).hexdigest()


def _read_shard(shard: Path) -> tuple[list[str], torch.Tensor]:
    """A shard's picture hashes and features, checked: readable, complete, matching its checksum, finite."""
    try:
        with safe_open(str(shard), framework="pt") as handle:
            metadata = handle.metadata() or {}
            features = handle.get_tensor("features")
        hashes = json.loads(metadata["hashes"])
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"unreadable: {first_line(err)}") from None
    if metadata.get("sha256") != _digest(features):
        raise ValueError("its features do not match their checksum")
    if len(hashes) != len(features) or not torch.isfinite(features).all():
        raise ValueError("its rows are incomplete or not finite")
    return hashes, features


@torch.no_grad()
def image_features(
    tower: VisionTower,
    paths: Sequence[str],
    view: str = "plain",
    batch_size: int = 64,
    store: FeatureStore | None = None,
    progress: bool = True,
    skip_unreadable: bool = False,
) -> tuple[torch.Tensor, CacheStats]:
    """Features of every picture in ``paths`` (rows in the same order), computing only the missing ones.

    ``batch_size`` pictures are decoded and written to one shard at a time; on CPU the tower runs on
    ``CPU_FORWARD_BATCH`` of them at a time. With ``skip_unreadable`` a picture that cannot be read (missing,
    truncated, not a picture, too large) is left out of the rows and named in ``stats.unreadable``; without
    it, such a picture raises (training data has been validated before).
    """
    store = store or FeatureStore(tower, view)
    stats = CacheStats()
    hashes: list[tuple[str, str]] = []  # (path, content hash), in the order of ``paths``
    for path in paths:
        try:
            hashes.append((path, file_sha256(path)))
        except OSError as err:
            if not skip_unreadable:
                raise
            stats.unreadable[path] = first_line(err)
    missing = {h: p for p, h in hashes if h not in store}
    stats.hits, stats.misses = len({h for _, h in hashes}) - len(missing), len(missing)
    if missing:
        tower.eval()
        device = next(tower.parameters()).device
        todo = list(missing.items())
        bar = tqdm(total=len(todo), desc=f"image features ({view})", unit="img", disable=not progress, file=sys.stderr)
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            read = _read_pictures(tower, chunk, view, stats.unreadable if skip_unreadable else None)
            if read:
                pixels = torch.stack([pixel for _, pixel in read]).to(device)
                step = batch_size if device.type == "cuda" else CPU_FORWARD_BATCH
                computed = torch.cat([tower(pixels[i : i + step]) for i in range(0, len(read), step)])
                store.add([h for h, _ in read], computed)
            bar.update(len(chunk))
        bar.close()
    rows = [store.get(h) for p, h in hashes if p not in stats.unreadable]
    return (torch.stack(rows) if rows else torch.empty(0, tower.num_features)), stats


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


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
