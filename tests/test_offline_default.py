"""The real offline default end to end: e5-small + EfficientNet-Lite0 on Emoji-CLDR Swahili (one short epoch)."""

from __future__ import annotations

import json

import pytest
import torch

from mlilt.adapt import run_split
from mlilt.cli.main import main
from mlilt.constants import METRICS_NAME
from mlilt.evaluation.metrics import retrieval_metrics
from mlilt.hub.loading import load
from mlilt.hub.onnx_export import export_onnx
from mlilt.onnx_runtime import OnnxModel

pytestmark = pytest.mark.slow


def test_adapt_swahili_on_the_offline_default(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["adapt", "--lang", "sw", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / METRICS_NAME).read_text())
    chance = 100.0 / metrics["test"]["num_pictures"]
    # one epoch already retrieves far above chance (about 0.35%) in both directions
    assert metrics["test"]["text_to_image_R@10"] > 20 * chance
    assert metrics["test"]["image_to_text_R@10"] > 20 * chance
    assert metrics["frozen_reference"]["test"]["text_to_image_R@10"] > 20 * chance
    share = metrics["parameters"]["total"]["percent"]
    assert 0.5 < share < 7.0  # LilT: adapters + LayerNorms + heads, a few percent of the model
    printed = capsys.readouterr().out
    assert "adapters" in printed and "frozen (" in printed and "started from heads trained alone" in printed

    model = load(out)  # the published folder loads back onto the real towers
    names = ["mbwa", "paka", "ndizi"]
    text = model.embed_texts(names)
    assert text.shape == (3, 256)

    # served through ONNX (no torch at query time), the real run retrieves as it does in torch
    captions, picture_paths, targets = run_split(out, model)
    pictures = [model.vision.open(p) for p in picture_paths]
    export_onnx(model, tmp_path / "onnx")
    with torch.no_grad():
        expected = retrieval_metrics(model.embed_texts(captions) @ model.embed_images(pictures).T, targets)
    for int8, tolerance in ((False, 0.0), (True, 2.0)):
        runtime = OnnxModel(tmp_path / "onnx", int8=int8)
        scores = torch.from_numpy(runtime.embed_texts(captions) @ runtime.embed_images(pictures).T)
        got = retrieval_metrics(scores, targets)
        for key in ("text_to_image_R@1", "text_to_image_R@10", "image_to_text_R@1", "image_to_text_R@10"):
            assert abs(got[key] - expected[key]) <= tolerance + 1e-6, (int8, key, got[key], expected[key])
