"""The real offline default end to end: e5-small + EfficientNet-Lite0 on Emoji-CLDR Swahili (one short epoch)."""

from __future__ import annotations

import json

import pytest

from mlilt.cli.main import main
from mlilt.constants import METRICS_NAME
from mlilt.hub.loading import load

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
