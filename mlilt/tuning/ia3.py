"""``ia3``: (IA)³, learned vectors that rescale keys, values and feed-forward activations (Liu et al., NeurIPS 2022).

Three vectors per layer, initialised to one (so the tower starts as the pretrained one): the outputs of the key
and value projections and the input of the feed-forward output projection (the activations) are multiplied
element-wise. About 0.03 % of a base encoder; applied through peft's IA3 layers at the places
:mod:`mlilt.tuning.sites` names, and merged into the projections' weights for export.
"""

from __future__ import annotations

from torch import nn

from mlilt.errors import TuningError
from mlilt.tuning.peft_tuners import inject_peft, merge_peft_layers
from mlilt.tuning.registry import TuningMethod, register_method
from mlilt.tuning.sites import module_names

NAME = "ia3"


def _apply(tower: nn.Module, config) -> None:
    from peft import IA3Config  # heavy optional dependency: only when this method is used

    keys_values = module_names(tower, NAME, lambda family: family.keys_values)
    feedforward = module_names(tower, NAME, lambda family: (family.feedforward_out,) if family.feedforward_out else ())
    if not keys_values or not feedforward:
        raise TuningError(
            f"ia3: {type(tower).__name__} has no separate key/value and feed-forward projections mlilt knows "
            "(a fused qkv cannot scale keys and values alone); use lora or adapters for this tower"
        )
    ia3 = IA3Config(target_modules=keys_values + feedforward, feedforward_modules=feedforward)
    inject_peft(tower, ia3, "ia3_")


register_method(
    TuningMethod(
        NAME,
        _apply,
        "(IA)³ vectors rescaling the attention keys and values and the feed-forward activations (peft).",
        towers=("text",),
        merge=merge_peft_layers,  # each vector scales its projection's rows (outputs) or columns (inputs)
    )
)
