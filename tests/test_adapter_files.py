"""Adapter files: save -> reload gives identical embeddings; anything that does not fit is refused clearly."""

from __future__ import annotations

import json

import pytest
import torch

from mlilt.constants import ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME
from mlilt.errors import AdapterMismatchError
from mlilt.hub.adapter_files import load_adapter_into, save_adapter
from mlilt.hub.loading import load
from mlilt.model import build_model

from helpers import TEXTS, draw_picture, tiny_model_config, trained_model


@pytest.mark.parametrize(
    "method,vision_method", [("adapters", "frozen"), ("lora", "adapters"), ("bitfit", "layernorm"), ("ia3", "frozen")]
)
def test_save_reload_gives_identical_embeddings(tiny_assets, tmp_path, method, vision_method):
    model = trained_model(tiny_assets, method=method, vision_method=vision_method)
    images = [draw_picture("red", "circle"), draw_picture("blue", "bar")]
    save_adapter(model, tmp_path, {"lang": "en"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME]
    reloaded = load(tmp_path)
    assert torch.equal(model.embed_texts(TEXTS), reloaded.embed_texts(TEXTS))
    assert torch.equal(model.embed_images(images), reloaded.embed_images(images))
    config = json.loads((tmp_path / ADAPTER_CONFIG_NAME).read_text())
    assert config["model"]["text"]["method"] == method and config["text_hidden_size"] == 32
    assert config["vision_num_features"] == 64 and config["lang"] == "en"
    assert 0 < config["parameters"]["total"]["percent"] < 100


def test_only_trained_tensors_are_saved(tiny_assets, tmp_path):
    from safetensors.torch import load_file

    model = trained_model(tiny_assets)
    save_adapter(model, tmp_path)
    saved = load_file(str(tmp_path / ADAPTER_WEIGHTS_NAME))
    assert set(saved) == {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any("word_embeddings" in n for n in saved)


def test_refuses_a_different_base_or_shape(tiny_assets, tmp_path):
    save_adapter(trained_model(tiny_assets, reduction_factor=4), tmp_path)
    other_shape = build_model(tiny_model_config(tiny_assets, reduction_factor=2))
    with pytest.raises(AdapterMismatchError, match="shape"):
        load_adapter_into(other_shape, tmp_path)
    other_method = build_model(tiny_model_config(tiny_assets, method="layernorm"))
    with pytest.raises(AdapterMismatchError, match="method"):
        load_adapter_into(other_method, tmp_path)
    config = json.loads((tmp_path / ADAPTER_CONFIG_NAME).read_text())
    config["text_hidden_size"] = 768
    config["model"]["text"]["name"] = "xlm-roberta-base"
    (tmp_path / ADAPTER_CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(AdapterMismatchError, match="xlm-roberta-base"):
        load_adapter_into(other_shape, tmp_path)


def test_refuses_malformed_missing_or_pickled(tiny_assets, tmp_path):
    save_adapter(trained_model(tiny_assets), tmp_path)
    (tmp_path / ADAPTER_CONFIG_NAME).write_text("{not json")
    with pytest.raises(AdapterMismatchError, match="malformed"):
        load(tmp_path)
    (tmp_path / ADAPTER_CONFIG_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=ADAPTER_CONFIG_NAME):
        load(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(AdapterMismatchError, match="pickle"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nowhere")
