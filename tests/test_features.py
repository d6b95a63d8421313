"""The frozen-feature cache: computed once, keyed by tower weights, view and picture content."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from mlilt.cache import file_sha256
from mlilt.feature_files import RowFile, RowWriter
from mlilt.features import FeatureStore, fill, image_features
from mlilt.towers.vision import VisionTower

from helpers import draw_picture


def _pictures(folder, n=5):
    paths = []
    for i, (colour, shape) in enumerate(
        [("red", "circle"), ("blue", "bar"), ("green", "square"), ("black", "triangle"), ("purple", "circle")][:n]
    ):
        path = folder / f"p{i}.png"
        draw_picture(colour, shape).save(path)
        paths.append(str(path))
    return paths


def test_cache_hits_after_the_first_pass_and_matches_the_tower(tmp_path):
    torch.manual_seed(0)
    tower = VisionTower(timm.create_model("test_vit", pretrained=False, num_classes=0).eval(), "test_vit")
    paths = _pictures(tmp_path)
    root = tmp_path / "cache"
    first, stats = image_features(tower, paths, store=FeatureStore(tower, root=root), progress=False)
    assert (stats.hits, stats.misses) == (0, 5)
    again, stats = image_features(tower, paths, store=FeatureStore(tower, root=root), progress=False)
    assert (stats.hits, stats.misses) == (5, 0)
    assert torch.equal(first[:], again[:])
    with torch.no_grad():
        direct = tower(torch.stack([tower.preprocess(Image.open(p)) for p in paths]))
    assert torch.allclose(first[:], direct, atol=1e-5)

    # a renamed copy of a picture hits (content hash); a new picture misses
    shutil.copy(paths[0], tmp_path / "renamed.png")
    _, stats = image_features(
        tower, [str(tmp_path / "renamed.png")], store=FeatureStore(tower, root=root), progress=False
    )
    assert (stats.hits, stats.misses) == (1, 0)


def test_key_changes_with_weights_and_view(tmp_path):
    torch.manual_seed(0)
    tower = VisionTower(timm.create_model("test_vit", pretrained=False, num_classes=0).eval(), "test_vit")
    plain = FeatureStore(tower, "plain", root=tmp_path)
    flip = FeatureStore(tower, "flip", root=tmp_path)
    with torch.no_grad():
        tower.model.blocks[0].mlp.fc2.bias.add_(1.0)
    changed = FeatureStore(tower, "plain", root=tmp_path)
    assert len({plain.folder, flip.folder, changed.folder}) == 3


# Large sets: shards merged into packs, rows read on demand, several processes filling one store.


def _many_pictures(folder, n):
    """``n`` different small real PNG pictures."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"g{i:04d}.png"
        Image.new("RGB", (8 + i % 5, 8), (i * 7 % 256, i * 13 % 256, i * 29 % 256)).save(path)
        paths.append(str(path))
    return paths


def _tower():
    torch.manual_seed(0)
    return VisionTower(timm.create_model("test_vit", pretrained=False, num_classes=0).eval(), "test_vit")


def test_rows_read_on_demand_equal_the_rows_read_into_memory(tmp_path):
    tower, paths = _tower(), _many_pictures(tmp_path / "pics", 40)
    store = FeatureStore(tower, root=tmp_path / "cache")
    in_memory, _ = image_features(tower, paths, batch_size=8, store=store, progress=False)
    assert in_memory.in_memory
    hashes = [file_sha256(p) for p in paths]
    on_demand = store.table(hashes, in_memory_bytes=0)
    assert not on_demand.in_memory and on_demand.shape == in_memory.shape
    picks = torch.tensor([39, 0, 5, 5, 17, 16, 18, 2])  # any order, repeats, runs of neighbours
    assert torch.equal(on_demand[picks], in_memory[picks])
    assert torch.equal(on_demand[3], in_memory[3]) and torch.equal(on_demand[10:20], in_memory[10:20])
    assert torch.equal(torch.cat(list(on_demand.batches(7))), in_memory[:])


def test_rows_are_read_in_any_order_and_a_file_cut_off_in_use_is_named(tmp_path):
    values = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    writer = RowWriter(tmp_path / "rows.safetensors", 50, 6)
    writer.write(np.arange(50)[::-1], values[::-1])  # any order, as text features sorted by length are written
    rows = writer.finish()
    picks = np.array([49, 3, 4, 5, 3, 0, 48, 20, 20, 21])  # lone rows, runs, repeats, both ends
    assert np.array_equal(rows.read(picks), values[picks]) and np.array_equal(rows.read_all(), values)
    assert rows.read(np.array([], dtype=np.int64)).shape == (0, 6)
    with open(rows.path, "r+b") as handle:  # another program cuts the file while it is in use
        handle.truncate(rows.offset + 10 * rows.row_bytes)
    for cut in ([45], [40, 41]):
        with pytest.raises(OSError, match="rows.safetensors was cut off while in use"):
            rows.read(np.array(cut))


def test_many_shards_are_merged_into_a_pack_with_the_same_rows(tmp_path):
    tower, paths = _tower(), _many_pictures(tmp_path / "pics", 40)
    root = tmp_path / "cache"
    store = FeatureStore(tower, root=root)
    fill(tower, paths, store=store, batch_size=2, progress=False)  # 20 shards of 2 pictures
    before = store.table([file_sha256(p) for p in paths])[:]
    store.close()
    features, stats = image_features(tower, paths, store=FeatureStore(tower, root=root), progress=False)
    assert (stats.hits, stats.misses) == (40, 0)
    folder = FeatureStore(tower, root=root).folder
    assert not list(folder.glob("shard-*")) and len(list(folder.glob("pack-*.safetensors"))) == 1
    assert torch.equal(features[:], before)
    # a pack is verified like a shard: damaged, it is named, removed, and its pictures computed again
    (pack,) = folder.glob("pack-*.safetensors")
    data = bytearray(pack.read_bytes())
    data[-8:] = bytes(8)
    pack.write_bytes(bytes(data))
    again, stats = image_features(tower, paths, store=FeatureStore(tower, root=root), progress=False)
    assert stats.misses == 40 and torch.equal(again[:], before)


def test_a_later_merge_takes_the_small_pack_of_an_earlier_one_along(tmp_path):
    tower, paths = _tower(), _many_pictures(tmp_path / "pics", 40)
    store = FeatureStore(tower, root=tmp_path / "cache")
    fill(tower, paths[:20], store=store, batch_size=4, progress=False)
    assert store.merge(at_shards=1) == 5
    fill(tower, paths[20:], store=store, batch_size=4, progress=False)
    assert store.merge(at_shards=1) == 5
    (pack,) = store.folder.glob("pack-*.safetensors")  # one pack of 40 rows, not one per merge
    assert RowFile.open(pack).rows == 40 and not list(store.folder.glob("shard-*"))
    hashes = [file_sha256(p) for p in paths]
    expected, _ = image_features(tower, paths, batch_size=8, store=FeatureStore(tower, root=tmp_path / "other"))
    assert torch.equal(store.table(hashes)[:], expected[:])
    assert store.merge(at_shards=1) == 0  # nothing new: the pack is left as it is


def test_no_merge_while_another_process_has_the_store_open(tmp_path):
    tower, paths = _tower(), _many_pictures(tmp_path / "pics", 8)
    root = tmp_path / "cache"
    store = FeatureStore(tower, root=root)
    fill(tower, paths, store=store, batch_size=1, progress=False)
    reader = subprocess.Popen(  # another process holds the store's shared lock
        [
            sys.executable,
            "-c",
            f"import fcntl, os, time; fd = os.open({str(store.folder / 'store.lock')!r}, "
            "os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_SH); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "locked"
        assert store.merge(at_shards=1) == 0 and len(list(store.folder.glob("shard-*"))) == 8
    finally:
        reader.kill()
        reader.wait()
    assert store.merge(at_shards=1) == 8 and not list(store.folder.glob("shard-*"))


FILL_SCRIPT = """
import sys, time, timm, torch
from mlilt.features import FeatureStore, fill
from mlilt.towers.vision import VisionTower
torch.manual_seed(0); torch.set_num_threads(1)
tower = VisionTower(timm.create_model("test_vit", pretrained=False, num_classes=0).eval(), "test_vit")
paths = sys.argv[3:]
store = FeatureStore(tower, root=sys.argv[1])
add = store.add
store.add = lambda *a: (add(*a), time.sleep(0.1))  # slow enough to be killed midway
stats = fill(tower, paths, store=store, batch_size=4,
             shard=tuple(map(int, sys.argv[2].split("/"))), progress=False)
print(stats.misses, flush=True)
"""


def _stored_rows(folder) -> int:
    return sum(RowFile.open(p).rows for p in folder.glob("*.safetensors"))


def test_a_parallel_fill_killed_midway_resumes_without_recomputing(tmp_path):
    tower, paths = _tower(), _many_pictures(tmp_path / "pics", 120)
    root = tmp_path / "cache"
    folder = FeatureStore(tower, root=root).folder
    workers = [
        subprocess.Popen([sys.executable, "-c", FILL_SCRIPT, str(root), f"{i}/2", *paths], stdout=subprocess.PIPE)
        for i in range(2)
    ]
    deadline = time.monotonic() + 120
    while _stored_rows(folder) < 24 and time.monotonic() < deadline:  # both at work: kill them midway
        assert all(w.poll() is None for w in workers), "a fill worker stopped early"
        time.sleep(0.05)
    for worker in workers:
        worker.kill()
        worker.wait()
    stored = _stored_rows(folder)
    assert 24 <= stored < 120, stored
    # the rerun computes exactly what was not stored: nothing finished is lost, nothing is done twice
    reruns = [
        subprocess.run(
            [sys.executable, "-c", FILL_SCRIPT, str(root), f"{i}/2", *paths], capture_output=True, text=True
        )
        for i in range(2)
    ]
    assert all(r.returncode == 0 for r in reruns), [r.stderr[-800:] for r in reruns]
    assert sum(int(r.stdout.split()[-1]) for r in reruns) == 120 - stored
    features, stats = image_features(tower, paths, store=FeatureStore(tower, root=root), progress=False)
    assert (stats.hits, stats.misses) == (120, 0)
    with torch.no_grad():
        direct = tower(torch.stack([tower.preprocess(Image.open(p)) for p in paths[:6]]))
    assert torch.allclose(features[:6], direct, atol=1e-5)
