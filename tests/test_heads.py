"""Heads-only training on the untrained model's features: shares the towers, trains only heads, hands them over."""

from __future__ import annotations

import torch

from mlilt.config import TrainConfig
from mlilt.data.sources import load_records
from mlilt.evaluation.retrieval import evaluate_table
from mlilt.model import build_model, prepare_data
from mlilt.training.heads import copy_heads, frozen_features, heads_only, train_heads

from helpers import tiny_model_config


def _model(assets, method: str):
    return build_model(tiny_model_config(assets, method), seed=0)


def test_warm_heads_train_only_heads_and_pass_them_on(tiny_assets, shapes_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("MLILT_CACHE", str(tmp_path / "cache"))
    records = load_records(str(shapes_dataset), "en")
    model = _model(tiny_assets, "adapters")
    data = prepare_data(records, model, progress=False)
    towers_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(("image_", "text_h"))}
    trainable_before = {name for name, p in model.named_parameters() if p.requires_grad}

    warm = heads_only(model, seed=3)
    assert warm.text is model.text and warm.vision is model.vision  # shared, not copied
    frozen_data = frozen_features(warm, data, records, "en")
    # the untrained adapters are the identity: these are the pretrained tower's features
    reference = _model(tiny_assets, "frozen")
    expected = prepare_data(records, reference, progress=False).splits["train"].text_features
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
