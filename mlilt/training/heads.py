"""Heads-only training on frozen tower features: the ``frozen`` reference and the heads warm-up.

Every tuning method starts from the pretrained towers (adapters and LoRA start as the identity), so the
features of a freshly assembled model *are* the frozen towers' features. Computed once, they make
heads-only training cost seconds, which is what two parts of ``mlilt adapt`` need:

- the ``frozen`` reference (LiT-style: towers locked, heads and temperature trained) that a method's
  gain is measured against, trained for the same number of epochs as the method in all;
- the heads warm-up (linear probing before fine-tuning, "LP-FT", Kumar et al., ICLR 2022): the method
  starts from trained heads instead of random ones, so its first steps do not push the tower around to
  make up for random projections. With random heads, 6 epochs are far from enough for the heads alone
  (Swahili val R@1 still rising at epoch 6; it levels off after about 20 epochs).

The heads-only model shares the towers of the method's model (nothing is copied); while it trains,
every tower parameter is frozen, and the method's own trainable flags are restored afterwards.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from mlilt.config import TrainConfig
from mlilt.data.prepare import PreparedData
from mlilt.data.records import CaptionRecord
from mlilt.hub.adapter_files import load_adapter_into
from mlilt.model import DualEncoder, prepare_data, text_features
from mlilt.training.loop import TrainResult, train
from mlilt.tuning.registry import FROZEN


def heads_only(model: DualEncoder, seed: int) -> DualEncoder:
    """A dual encoder with fresh heads on ``model``'s towers (shared, not copied), both towers ``frozen``."""
    config = copy.deepcopy(model.config)
    config.text.method = FROZEN
    config.vision.method = FROZEN
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return DualEncoder(model.vision, model.text, config).to(model.logit_scale.device)


def frozen_features(
    heads_model: DualEncoder, data: PreparedData, records: list[CaptionRecord], eval_lang: str | None
) -> PreparedData:
    """``data`` with the frozen towers' features: text features added, image features computed if missing.

    Call it before the method's model is trained: the towers must still be the pretrained ones.
    """
    if not data.image_features:  # the method trains the vision tower: its frozen features are not cached yet
        return prepare_data(records, heads_model, eval_lang=eval_lang, progress=False)
    splits = {
        name: dataclasses.replace(table, text_features=text_features(heads_model, table.tokens, progress=False))
        for name, table in data.splits.items()
    }
    return dataclasses.replace(data, splits=splits)


def train_heads(
    heads_model: DualEncoder,
    data: PreparedData,
    cfg: TrainConfig,
    epochs: int,
    out_dir: Path,
    progress: bool = True,
    info: dict | None = None,
) -> TrainResult:
    """Train only the heads and temperature for ``epochs``; the best epoch's heads are loaded back."""
    with _towers_frozen(heads_model):
        result = train(
            heads_model,
            data,
            dataclasses.replace(cfg, epochs=epochs, max_steps=0),  # the heads keep their epochs
            out_dir,
            progress=progress,
            adapter_info=info,
        )
        load_adapter_into(heads_model, out_dir)
    return result


def copy_heads(source: DualEncoder, target: DualEncoder) -> None:
    """Give ``target`` the heads and temperature of ``source``."""
    with torch.no_grad():
        target.image_head.load_state_dict(source.image_head.state_dict())
        target.text_head.load_state_dict(source.text_head.state_dict())
        target.logit_scale.copy_(source.logit_scale)


@contextmanager
def _towers_frozen(model: DualEncoder) -> Iterator[None]:
    """Freeze every tower parameter for a while (the towers may be shared with a model that trains them)."""
    towers = [*model.vision.parameters(), *model.text.parameters()]
    flags = [p.requires_grad for p in towers]
    for param in towers:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in zip(towers, flags):
            param.requires_grad_(flag)
