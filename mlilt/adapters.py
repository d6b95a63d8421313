"""Houlsby-placed bottleneck adapters, injected at runtime into unmodified transformers / timm models.

LilT (Khan & Fu, ICLR 2023) follows Houlsby et al. (2019): in every transformer layer, one adapter
after the attention output projection and one after the feed-forward output projection.

- Post-LN encoders (BERT, XLM-R, e5, DistilBERT): the adapter acts on the projection's output,
  before the residual add and LayerNorm.
- Pre-LN ViTs (timm ``Block``): the adapter acts on ``attn.proj`` / ``mlp.fc2`` output, inside the
  residual branch.

An adapter is ``h + up(gelu(down(h)))`` with ``up`` initialised to zero, so the injected model
starts exactly as the pretrained one. Injection uses forward hooks on the upstream ``nn.Linear``
modules: no model code is copied, and the base state-dict keys stay unchanged (adapter weights
appear under ``<linear>.mlilt_adapter.*``).
"""

from __future__ import annotations

import torch
from torch import nn

ADAPTER_ATTR = "mlilt_adapter"


class BottleneckAdapter(nn.Module):
    """``h + up(gelu(down(h)))``; ``up`` starts at zero so the adapter starts as the identity."""

    def __init__(self, hidden_size: int, reduction_factor: int):
        super().__init__()
        bottleneck = max(1, hidden_size // reduction_factor)
        self.down = nn.Linear(hidden_size, bottleneck)
        self.act = nn.GELU()
        self.up = nn.Linear(bottleneck, hidden_size)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))


def _run_adapter(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
    return getattr(module, ADAPTER_ATTR)(output)


def adapter_sites(model: nn.Module) -> list[nn.Linear]:
    """The output projections of every transformer layer, found by structure, not by name.

    Recognised layer shapes:
        - BERT family output blocks (``BertSelfOutput``, ``BertOutput``, XLM-R, RoBERTa, ELECTRA):
          a module with a ``dense`` Linear and a ``LayerNorm`` LayerNorm.
        - DistilBERT ``TransformerBlock``: ``attention.out_lin`` and ``ffn.lin2``.
        - timm ViT / DeiT ``Block``: ``attn.proj`` and ``mlp.fc2``.
    """
    sites: list[nn.Linear] = []
    for module in model.modules():
        if isinstance(getattr(module, "dense", None), nn.Linear) and isinstance(
            getattr(module, "LayerNorm", None), nn.LayerNorm
        ):
            sites.append(module.dense)
        elif isinstance(getattr(module, "sa_layer_norm", None), nn.LayerNorm):
            sites += [module.attention.out_lin, module.ffn.lin2]
        elif isinstance(getattr(module, "norm1", None), nn.LayerNorm) and hasattr(module, "attn"):
            sites += [module.attn.proj, module.mlp.fc2]
    return [site for site in sites if isinstance(site, nn.Linear)]


def inject_adapters(model: nn.Module, reduction_factor: int) -> list[BottleneckAdapter]:
    """Add a bottleneck adapter after every layer's attention and feed-forward output projection.

    Returns:
        The adapters added (their parameters require grad).

    Raises:
        ValueError: The model has no recognised transformer layer (e.g. a convolutional network).
    """
    sites = adapter_sites(model)
    if not sites:
        raise ValueError(
            f"adapters: found no transformer layers in {type(model).__name__}. Supported: BERT-family "
            "(BERT, XLM-R, e5), DistilBERT and timm ViT/DeiT. For a convolutional tower use --vision-method frozen."
        )
    added = []
    for linear in sites:
        if hasattr(linear, ADAPTER_ATTR):
            raise ValueError("adapters were already injected into this model")
        adapter = BottleneckAdapter(linear.out_features, reduction_factor).to(linear.weight.device)
        linear.add_module(ADAPTER_ATTR, adapter)
        linear.register_forward_hook(_run_adapter)
        added.append(adapter)
    return added
