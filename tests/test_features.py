"""The frozen-feature cache: computed once, keyed by tower weights, view and picture content."""

from __future__ import annotations

import shutil

import timm
import torch
from PIL import Image

from mlilt.features import FeatureStore, image_features
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
    assert torch.equal(first, again)
    with torch.no_grad():
        direct = tower(torch.stack([tower.preprocess(Image.open(p)) for p in paths]))
    assert torch.allclose(first, direct, atol=1e-5)

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
