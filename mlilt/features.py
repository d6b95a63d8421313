"""The frozen-feature cache: a frozen vision tower's features are computed once per picture and kept on disk.

Cache entries are keyed by

- the tower: its name plus a hash of every weight, its data config and transform, and the view;
- the picture: a SHA-256 of the file's bytes (so a renamed file still hits, an edited one misses).

Features live in shards (``shard-*.safetensors``, each with its pictures' hashes in the metadata),
written atomically; later epochs, runs and languages reuse them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from mlilt.cache import cache_dir
from mlilt.data.images import open_rgb

if TYPE_CHECKING:  # annotations only: the data layer imports this module, and towers sit above it
    from mlilt.towers.vision import VisionTower

FEATURE_FORMAT = "1"
# On CPU, small forward batches are faster per picture: EfficientNet-Lite0 on 2 cores ran ~60 pictures/s in
# batches of 2-4 and ~26 in batches of 64 (benchmarks/inference.py, docs/benchmarks.md). Shards still hold
# ``batch_size`` pictures.
CPU_FORWARD_BATCH = 4


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0

    def __str__(self) -> str:
        return f"{self.hits} cached, {self.misses} computed"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tower_fingerprint(tower: VisionTower, view: str) -> str:
    """A short hash of everything that determines a tower's features for a picture."""
    digest = hashlib.sha256()
    digest.update(
        f"{FEATURE_FORMAT}|{tower.name}|{view}|{sorted(tower.data_config.items())}|{tower.transform}".encode()
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
        for shard in sorted(self.folder.glob("shard-*.safetensors")):
            with safe_open(str(shard), framework="pt") as handle:
                hashes = json.loads(handle.metadata()["hashes"])
                features = handle.get_tensor("features")
            self._rows.update(zip(hashes, features))

    def __contains__(self, content_hash: str) -> bool:
        return content_hash in self._rows

    def get(self, content_hash: str) -> torch.Tensor:
        return self._rows[content_hash]

    def add(self, hashes: list[str], features: torch.Tensor) -> None:
        """Keep new rows and write them as one shard, atomically."""
        features = features.detach().float().cpu().contiguous()
        shard = (
            self.folder / f"shard-{len(list(self.folder.glob('shard-*.safetensors'))):05d}-{os.getpid()}.safetensors"
        )
        tmp = shard.with_suffix(".tmp")
        save_file({"features": features}, str(tmp), metadata={"hashes": json.dumps(hashes)})
        os.replace(tmp, shard)
        self._rows.update(zip(hashes, features))


@torch.no_grad()
def image_features(
    tower: VisionTower,
    paths: Sequence[str],
    view: str = "plain",
    batch_size: int = 64,
    store: FeatureStore | None = None,
    progress: bool = True,
) -> tuple[torch.Tensor, CacheStats]:
    """Features of every picture in ``paths`` (rows in the same order), computing only the missing ones.

    ``batch_size`` pictures are decoded and written to one shard at a time; on CPU the tower runs on
    ``CPU_FORWARD_BATCH`` of them at a time.
    """
    store = store or FeatureStore(tower, view)
    hashes = [file_sha256(p) for p in paths]
    missing = {h: p for h, p in zip(hashes, paths) if h not in store}
    stats = CacheStats(hits=len(set(hashes)) - len(missing), misses=len(missing))
    if missing:
        tower.eval()
        device = next(tower.parameters()).device
        todo = list(missing.items())
        bar = tqdm(total=len(todo), desc=f"image features ({view})", unit="img", disable=not progress, file=sys.stderr)
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            pixels = torch.stack([tower.preprocess(open_rgb(p), view) for _, p in chunk]).to(device)
            step = batch_size if device.type == "cuda" else CPU_FORWARD_BATCH
            computed = torch.cat([tower(pixels[i : i + step]) for i in range(0, len(chunk), step)])
            store.add([h for h, _ in chunk], computed)
            bar.update(len(chunk))
        bar.close()
    features = torch.stack([store.get(h) for h in hashes]) if hashes else torch.empty(0, tower.num_features)
    return features, stats


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
