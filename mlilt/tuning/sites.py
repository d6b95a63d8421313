"""Where the tuning methods act inside one transformer layer, per model family: one table (as peft's
``TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING``).

A layer is recognised by its class (module path and name, or a parent class's); a new family is one entry in
:data:`LAYER_FAMILIES`. Paths are relative to the layer. Upstream classes are never modified: methods inject
modules or hooks at these places at runtime.

Houlsby et al. (2019), as LilT: an adapter after the attention output projection and after the feed-forward
output projection of every layer; in post-LN encoders (BERT family) before the residual add and LayerNorm,
in pre-LN ViTs inside the residual branch. LoRA: the attention input projections. (IA)³ (Liu et al., 2022):
the outputs of the key and value projections and the input of the feed-forward output projection.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from mlilt.errors import TuningError


@dataclass(frozen=True)
class LayerFamily:
    """The places inside one layer of a family.

    Attributes:
        name: Shown in messages.
        adapter_sites: Output projections (``nn.Linear``) a bottleneck adapter follows, in order.
        attention: Attention input projections (LoRA); a fused ``qkv`` counts as one.
        keys_values: Separate key and value projections ((IA)³ scales their outputs); empty when they are fused.
        feedforward_out: The feed-forward output projection ((IA)³ scales its input).
    """

    name: str
    adapter_sites: tuple[str, ...]
    attention: tuple[str, ...]
    keys_values: tuple[str, ...] = ()
    feedforward_out: str = ""


BERT = LayerFamily(
    "bert (BERT, mBERT, XLM-R, multilingual-e5, RoBERTa, ELECTRA, CamemBERT)",
    adapter_sites=("attention.output.dense", "output.dense"),
    attention=("attention.self.query", "attention.self.key", "attention.self.value"),
    keys_values=("attention.self.key", "attention.self.value"),
    feedforward_out="output.dense",
)
DISTILBERT = LayerFamily(
    "distilbert",
    adapter_sites=("attention.out_lin", "ffn.lin2"),
    attention=("attention.q_lin", "attention.k_lin", "attention.v_lin"),
    keys_values=("attention.k_lin", "attention.v_lin"),
    feedforward_out="ffn.lin2",
)
TIMM_VIT = LayerFamily("timm vit / deit / beit", adapter_sites=("attn.proj", "mlp.fc2"), attention=("attn.qkv",))
TIMM_EVA = LayerFamily(
    "timm eva / eva02",
    adapter_sites=("attn.proj", "mlp.fc2"),
    attention=("attn.qkv", "attn.q_proj", "attn.k_proj", "attn.v_proj"),  # fused or not (qkv_fused=False)
)

# Qualified class name of one transformer layer -> its family.
LAYER_FAMILIES: dict[str, LayerFamily] = {
    "transformers.models.bert.modeling_bert.BertLayer": BERT,
    "transformers.models.roberta.modeling_roberta.RobertaLayer": BERT,
    "transformers.models.xlm_roberta.modeling_xlm_roberta.XLMRobertaLayer": BERT,
    "transformers.models.electra.modeling_electra.ElectraLayer": BERT,
    "transformers.models.camembert.modeling_camembert.CamembertLayer": BERT,
    "transformers.models.distilbert.modeling_distilbert.TransformerBlock": DISTILBERT,
    "timm.models.vision_transformer.Block": TIMM_VIT,  # vit_*, deit_*
    "timm.models.beit.Block": TIMM_VIT,
    "timm.models.eva.EvaBlock": TIMM_EVA,
}


def family_of(module: nn.Module) -> LayerFamily | None:
    """The family of a layer module (its class or a parent class is in the table), else None."""
    for cls in type(module).__mro__:
        family = LAYER_FAMILIES.get(f"{cls.__module__}.{cls.__qualname__}")
        if family is not None:
            return family
    return None


def transformer_layers(model: nn.Module, method: str) -> list[tuple[str, nn.Module, LayerFamily]]:
    """Every recognised layer of ``model`` as ``(name, layer, family)``, in module order.

    Raises:
        TuningError: No layer of a known family (e.g. a convolutional network); the message says how to add one.
    """
    layers = [(name, m, family) for name, m in model.named_modules() if (family := family_of(m)) is not None]
    if not layers:
        known = "; ".join(dict.fromkeys(f.name for f in LAYER_FAMILIES.values()))
        raise TuningError(
            f"{method}: found no transformer layers mlilt knows in {type(model).__name__}. Known families: {known}. "
            "A new family is one entry in LAYER_FAMILIES (mlilt/tuning/sites.py). For a convolutional tower use "
            "--vision-method frozen."
        )
    return layers


def linear_at(layer: nn.Module, path: str) -> nn.Linear | None:
    """The ``nn.Linear`` at ``path`` inside ``layer``, or None where the layer has none there."""
    try:
        module = layer.get_submodule(path)
    except AttributeError:
        return None
    return module if isinstance(module, nn.Linear) else None


def module_names(model: nn.Module, method: str, paths_of) -> list[str]:
    """Full names (relative to ``model``) of the ``nn.Linear`` modules ``paths_of(family)`` names in every layer."""
    names = []
    for name, layer, family in transformer_layers(model, method):
        names += [f"{name}.{path}" for path in paths_of(family) if linear_at(layer, path) is not None]
    return names
