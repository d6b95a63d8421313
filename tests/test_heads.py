"""Heads-only training on the untrained model's features: shares the towers, trains only heads, hands them over."""

from __future__ import annotations

import torch

from mlilt.config import Method, ModelConfig, TowerConfig, TrainConfig
from mlilt.data.files import load_caption_source
from mlilt.data.prepare import prepare
from mlilt.heads import copy_heads, frozen_features, heads_only, train_heads
from mlilt.model import build_model
from mlilt.train import evaluate_table


def _model(assets, method: Method):
    config = ModelConfig(
        text=TowerConfig(assets["text"], method),
        vision=TowerConfig(assets["vision"], Method.FROZEN, weights=assets["vision_weights"]),
        embed_dim=16,
    )
    return build_model(config, seed=0)


def test_warm_heads_train_only_heads_and_pass_them_on(tiny_assets, shapes_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("MLILT_CACHE", str(tmp_path / "cache"))
    records = load_caption_source(str(shapes_dataset), "en")
    model = _model(tiny_assets, Method.ADAPTERS)
    data = prepare(records, model, progress=False)
    towers_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(("image_", "text_h"))}
    trainable_before = {name for name, p in model.named_parameters() if p.requires_grad}

    warm = heads_only(model, seed=3)
    assert warm.text is model.text and warm.vision is model.vision  # shared, not copied
    frozen_data = frozen_features(warm, data, records, "en")
    # the untrained adapters are the identity: these are the pretrained tower's features
    reference = _model(tiny_assets, Method.FROZEN)
    expected = prepare(records, reference, progress=False).splits["train"].text_features
    torch.testing.assert_close(frozen_data.splits["train"].text_features, expected, atol=1e-5, rtol=1e-5)

    heads_before = warm.text_head.weight.clone()
    cfg = TrainConfig(epochs=1, batch_size=8, head_lr=1e-2, checkpoint_every=10**6)
    result = train_heads(warm, frozen_data, cfg, 4, tmp_path / "warm", progress=False)
    assert len(result.history) == 4
    assert not torch.equal(warm.text_head.weight, heads_before)
    for key, value in model.state_dict().items():  # the towers (adapters included) did not move
        if key in towers_before:
            assert torch.equal(value, towers_before[key]), key
    assert {name for name, p in model.named_parameters() if p.requires_grad} == trainable_before

    copy_heads(warm, model)
    assert torch.equal(model.text_head.weight, warm.text_head.weight)
    assert torch.equal(model.logit_scale, warm.logit_scale)
    # same heads on the same (still pretrained) towers: the method starts exactly where the warm-up ended
    start = evaluate_table(model, data, data.splits["val"])
    warmed = evaluate_table(warm, frozen_data, frozen_data.splits["val"])
    assert abs(start["text_to_image_R@1"] - warmed["text_to_image_R@1"]) < 1e-6
