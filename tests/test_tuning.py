"""Tuning methods: what each one trains (by module type), adapter placement and identity start, LilT figures."""

from __future__ import annotations

import copy

import pytest
import timm
import torch
import transformers as tf
from torch import nn

from mlilt.config import TowerConfig
from mlilt.tuning import registry, sites
from mlilt.tuning.adapters import ADAPTER_ATTR, BottleneckAdapter, adapter_sites
from mlilt.tuning.parameters import count_parameters
from mlilt.tuning.registry import apply_method

from helpers import tiny_text_model


def _cfg(method: str, **kw) -> TowerConfig:
    return TowerConfig(name="tiny", method=method, **kw)


def _trainable_names(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def _tuned_copy(kind: str, config: TowerConfig):
    """A tiny encoder, a copy of it with ``config``'s method applied, token ids, and the encoder's output on them."""
    torch.manual_seed(0)
    model = tiny_text_model(kind).eval()
    ids = torch.randint(5, 300, (3, 9))
    return model, apply_method(copy.deepcopy(model), config).eval(), ids, model(input_ids=ids).last_hidden_state


@pytest.mark.parametrize("kind", ["xlm-roberta", "bert", "distilbert"])
def test_adapters_start_as_the_pretrained_model(kind):
    model, adapted, ids, before = _tuned_copy(kind, _cfg("adapters", reduction_factor=4))
    assert torch.equal(before, adapted(input_ids=ids).last_hidden_state)
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


@pytest.mark.parametrize("kind", ["xlm-roberta", "bert", "distilbert"])
def test_ia3_starts_as_the_pretrained_model_and_trains_only_its_vectors(kind):
    """(IA)³: one vector on the keys, one on the values, one on the feed-forward activations, per layer."""
    _, scaled, ids, before = _tuned_copy(kind, _cfg("ia3"))
    assert torch.equal(before, scaled(input_ids=ids).last_hidden_state)  # the vectors start at one
    trained = {n: p for n, p in scaled.named_parameters() if p.requires_grad}
    assert trained and all("ia3_l" in n for n in trained)
    sizes = sorted(p.numel() for p in trained.values())
    assert sizes == [32] * 4 + [64] * 2  # keys and values (hidden 32), FFN activations (intermediate 64); 2 layers
    assert count_parameters(scaled).trainable == 2 * (32 + 32 + 64)
    with torch.no_grad():
        for p in trained.values():
            p.mul_(1.5)
    assert not torch.allclose(before, scaled(input_ids=ids).last_hidden_state)


def test_ia3_refuses_a_fused_qkv():
    vit = timm.create_model("test_vit", pretrained=False, num_classes=0)
    with pytest.raises(ValueError, match="fused qkv"):
        apply_method(vit, _cfg("ia3"))


def _tiny_timm(name: str, **kw) -> nn.Module:
    common = dict(pretrained=False, num_classes=0, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
    return timm.create_model(name, **(common | kw)).eval()


@pytest.mark.parametrize(
    "name, kw",
    [
        ("vit_tiny_patch16_224", {}),
        ("deit_tiny_patch16_224", {}),
        ("beit_base_patch16_224", {}),
        ("eva02_tiny_patch14_224", {}),
        ("eva02_tiny_patch14_224", {"qkv_fused": False}),
    ],
)
def test_timm_families_get_adapters_and_lora(name, kw):
    """Each family's table entry: two adapters per block that start as the identity, LoRA on the attention."""
    torch.manual_seed(0)
    pixels = torch.randn(2, 3, 32, 32)
    tower = _tiny_timm(name, **kw)
    before = tower(pixels)
    apply_method(tower, _cfg("adapters"))
    assert torch.equal(before, tower(pixels))
    assert len([m for m in tower.modules() if isinstance(m, BottleneckAdapter)]) == 2 * 2
    lora = apply_method(_tiny_timm(name, **kw), _cfg("lora", lora_rank=2))
    targets = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in lora.named_parameters() if p.requires_grad}
    assert targets == ({"q_proj", "k_proj", "v_proj"} if kw else {"qkv"})


def test_a_new_layer_family_is_one_table_entry(monkeypatch):
    class Block(nn.Module):  # a model family mlilt has never seen
        def __init__(self):
            super().__init__()
            self.mix, self.out = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            return x + self.out(torch.relu(self.mix(x)))

    tower = nn.Sequential(Block(), Block())
    with pytest.raises(ValueError, match="LAYER_FAMILIES"):
        apply_method(copy.deepcopy(tower), _cfg("adapters"))
    key = f"{Block.__module__}.{Block.__qualname__}"
    monkeypatch.setitem(
        sites.LAYER_FAMILIES, key, sites.LayerFamily("toy", adapter_sites=("out",), attention=("mix",))
    )
    apply_method(tower, _cfg("adapters"))
    assert [type(getattr(b.out, ADAPTER_ATTR)) for b in tower] == [BottleneckAdapter] * 2


def test_a_new_method_is_one_registration(monkeypatch):
    """A method registered once is accepted by configs, listed for the CLI and applied like the built-in ones."""

    def queries_only(tower, config):
        for name, module in tower.named_modules():
            if name.endswith("attention.self.query"):
                module.requires_grad_(True)

    method = registry.TuningMethod(
        "queries",
        queries_only,
        "only the attention query projections.",
        towers=("text",),
        merge=registry.merge_nothing,
    )
    monkeypatch.setitem(registry._METHODS, method.name, method)
    assert "queries" in registry.method_names("text") and "queries" not in registry.method_names("vision")
    model = apply_method(tiny_text_model("bert"), _cfg("queries"))
    assert {n.split(".")[-2] for n in _trainable_names(model)} == {"query"}
    with pytest.raises(ValueError, match="already registered"):
        registry.register_method(method)
