"""Tuning methods: what each one trains (by module type), adapter placement and identity start, LilT figures."""

from __future__ import annotations

import copy

import pytest
import timm
import torch
import transformers as tf
from torch import nn

from mlilt.config import TowerConfig
from mlilt.tuning.adapters import ADAPTER_ATTR, BottleneckAdapter, adapter_sites
from mlilt.tuning.parameters import count_parameters
from mlilt.tuning.registry import apply_method

from helpers import tiny_text_model


def _cfg(method: str, **kw) -> TowerConfig:
    return TowerConfig(name="tiny", method=method, **kw)


def _trainable_names(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


@pytest.mark.parametrize("kind", ["xlm-roberta", "bert", "distilbert"])
def test_adapters_start_as_the_pretrained_model(kind):
    torch.manual_seed(0)
    model = tiny_text_model(kind).eval()
    ids = torch.randint(5, 300, (3, 9))
    before = model(input_ids=ids).last_hidden_state
    adapted = apply_method(copy.deepcopy(model), _cfg("adapters", reduction_factor=4)).eval()
    after = adapted(input_ids=ids).last_hidden_state
    assert torch.equal(before, after)
    # two adapters per layer (after attention output and feed-forward output), 2 layers
    adapters = [m for m in adapted.modules() if isinstance(m, BottleneckAdapter)]
    assert len(adapters) == 4
    assert all(a.down.out_features == 32 // 4 for a in adapters)
    # base state-dict keys are unchanged: the pretrained weights still load
    base_keys = set(model.state_dict())
    assert base_keys <= set(adapted.state_dict())


def test_adapters_change_the_output_once_trained():
    model = apply_method(tiny_text_model("bert"), _cfg("adapters")).eval()
    ids = torch.randint(5, 300, (2, 7))
    before = model(input_ids=ids).last_hidden_state
    for adapter in (m for m in model.modules() if isinstance(m, BottleneckAdapter)):
        nn.init.normal_(adapter.up.weight, std=0.1)
    assert not torch.allclose(before, model(input_ids=ids).last_hidden_state)


def test_adapter_placement_bert_is_before_the_residual_layernorm():
    model = tiny_text_model("bert")
    sites = adapter_sites(model)
    layer = model.encoder.layer[0]
    assert layer.attention.output.dense in sites and layer.output.dense in sites
    assert layer.intermediate.dense not in sites  # the FFN *output* projection, not its input


def test_adapter_placement_vit_is_inside_the_residual_branch():
    vit = timm.create_model("test_vit", pretrained=False, num_classes=0).eval()
    pixels = torch.randn(2, 3, 160, 160)
    before = vit(pixels)
    apply_method(vit, _cfg("adapters"))
    block = vit.blocks[0]
    assert hasattr(block.attn.proj, ADAPTER_ATTR) and hasattr(block.mlp.fc2, ADAPTER_ATTR)
    assert torch.equal(before, vit(pixels))
    names = _trainable_names(vit)
    assert any(ADAPTER_ATTR in n for n in names) and any("norm" in n for n in names)


def test_adapters_refuse_a_convolutional_tower():
    conv = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    with pytest.raises(ValueError, match="no transformer layers"):
        apply_method(conv, _cfg("adapters"))
    with pytest.raises(ValueError, match="no LayerNorm"):
        apply_method(conv, _cfg("layernorm"))


def test_each_method_trains_parameters_of_the_right_type():
    base = tiny_text_model("xlm-roberta")
    norms = {id(p) for m in base.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}

    frozen = apply_method(copy.deepcopy(base), _cfg("frozen"))
    assert count_parameters(frozen).trainable == 0

    full = apply_method(copy.deepcopy(base), _cfg("full"))
    assert count_parameters(full).trainable == count_parameters(full).total

    ln = apply_method(base, _cfg("layernorm"))
    assert {id(p) for p in ln.parameters() if p.requires_grad} == norms

    bitfit = apply_method(tiny_text_model("xlm-roberta"), _cfg("bitfit"))
    assert all(n.endswith("bias") for n in _trainable_names(bitfit)) and _trainable_names(bitfit)

    lora = apply_method(tiny_text_model("xlm-roberta"), _cfg("lora", lora_rank=4))
    names = _trainable_names(lora)
    assert names and all("lora_" in n for n in names)
    assert any("query" in n for n in names) and any("value" in n for n in names)


def _lilt_percentages(config) -> dict[str, float]:
    out = {}
    for method in ("layernorm", "adapters", "bitfit", "lora"):
        with torch.device("meta"):
            model = tf.AutoModel.from_config(config)
            apply_method(model, _cfg(method, reduction_factor=4))
        out[method] = count_parameters(model).percent
    return out


@pytest.mark.parametrize(
    "config",
    [tf.BertConfig(), tf.XLMRobertaConfig(vocab_size=250002, max_position_embeddings=514)],
    ids=["bert-base", "xlm-roberta-base"],
)
def test_lilt_parameter_shares_on_base_sized_encoders(config):
    """LilT: adapters + LN train a few percent of a base encoder; LN alone well under 1%."""
    shares = _lilt_percentages(config)
    assert 1.0 < shares["adapters"] < 7.0
    assert shares["layernorm"] < 1.0
    assert shares["bitfit"] < 1.0 and shares["lora"] < 1.0
