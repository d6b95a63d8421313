"""``lora``: low-rank updates of the attention input projections (Hu et al., ICLR 2022), injected with peft."""

from __future__ import annotations

from torch import nn

from mlilt.tuning.peft_tuners import inject_peft, merge_peft_layers
from mlilt.tuning.registry import TuningMethod, register_method
from mlilt.tuning.sites import module_names

NAME = "lora"


def _apply(tower: nn.Module, config) -> None:
    from peft import LoraConfig  # heavy optional dependency: only when this method is used

    targets = module_names(tower, NAME, lambda family: family.attention)
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules=targets)
    inject_peft(tower, lora, "lora_")


register_method(
    TuningMethod(
        NAME,
        _apply,
        "rank-r LoRA updates of the attention query/key/value projections (peft).",
        towers=("text",),
        merge=merge_peft_layers,  # W + B A * alpha / r
    )
)
