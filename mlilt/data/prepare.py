"""Turn validated caption records into tensors the training loop can index: the data side of a run.

Pictures become rows of a feature table (computed once by the frozen vision tower and cached on
disk) or, when the vision tower is trained, paths loaded per step. Captions are tokenised once,
here, never inside ``forward``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from mlilt.data.records import CaptionRecord
from mlilt.features import CacheStats, image_features
from mlilt.model import DualEncoder


@dataclass
class CaptionTable:
    """The captions of one split: each row a caption with the index of its picture."""

    captions: list[str]
    picture: torch.Tensor  # (N,) long: row in PreparedData.picture_paths
    tokens: list[list[int]]
    text_features: torch.Tensor | None = None  # (N, hidden) when the text tower is frozen

    def __len__(self) -> int:
        return len(self.captions)


@dataclass
class PreparedData:
    picture_ids: list[str]
    picture_paths: list[str]
    splits: dict[str, CaptionTable]
    image_features: dict[str, torch.Tensor] = field(default_factory=dict)  # view -> (P, D); empty if trained
    cache_stats: dict[str, CacheStats] = field(default_factory=dict)


def prepare(
    records: list[CaptionRecord],
    model: DualEncoder,
    eval_lang: str | None = None,
    progress: bool = True,
    splits: tuple[str, ...] = ("train", "val", "test"),
) -> PreparedData:
    """Index pictures, cache frozen features, tokenise captions.

    Training uses every caption of the train split; validation and test use only the primary
    captions (``primary=True``) in ``eval_lang`` (all languages if None). Only ``splits`` are built.
    """
    picture_ids = sorted({r.image_id for r in records})
    first_path = {}
    for r in records:
        first_path.setdefault(r.image_id, r.image)
    paths = [first_path[i] for i in picture_ids]
    row = {pid: i for i, pid in enumerate(picture_ids)}

    def table(rows: list[CaptionRecord]) -> CaptionTable:
        captions = [r.caption for r in rows]
        tokens = model.text.tokenize(captions, padding=False)["input_ids"] if captions else []
        return CaptionTable(captions, torch.tensor([row[r.image_id] for r in rows], dtype=torch.long), tokens)

    def keep_for_eval(r: CaptionRecord) -> bool:
        return r.primary and (eval_lang is None or r.lang in (None, eval_lang))

    tables = {
        name: table([r for r in records if r.split == name and (name == "train" or keep_for_eval(r))])
        for name in splits
    }
    data = PreparedData(picture_ids, paths, tables)
    if model.vision_frozen:
        for view in model.config.image_views:
            data.image_features[view], data.cache_stats[view] = image_features(
                model.vision, paths, view, progress=progress
            )
    if model.text_frozen:
        for name, split in tables.items():
            split.text_features = text_features(model, split, progress=progress, desc=f"text features ({name})")
    return data


@torch.no_grad()
def text_features(
    model: DualEncoder, table: CaptionTable, batch_size: int = 256, progress: bool = True, desc: str = "text"
) -> torch.Tensor:
    """Pooled features of a frozen text tower for every caption of a table (computed once per run)."""
    model.text.eval()
    device = model.logit_scale.device
    out = []
    order = sorted(range(len(table)), key=lambda i: len(table.tokens[i]))  # similar lengths pad less
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, file=sys.stderr):
        idx = order[start : start + batch_size]
        ids, mask = pad_tokens([table.tokens[i] for i in idx], model.text.tokenizer.pad_token_id)
        out.append(model.text(ids.to(device), mask.to(device)).float().cpu())
    features = torch.cat(out) if out else torch.empty(0, model.text.hidden_size)
    result = torch.empty_like(features)
    result[torch.tensor(order, dtype=torch.long)] = features
    return result


def pad_tokens(token_lists: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists into (ids, attention_mask)."""
    width = max(len(t) for t in token_lists)
    ids = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for i, tokens in enumerate(token_lists):
        ids[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[i, : len(tokens)] = 1
    return ids, mask


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, group: int = 32) -> list[list[int]]:
    """Shuffled batches for one epoch, grouped by caption length (less padding, faster steps).

    Deterministic in (seed, epoch). Every batch has exactly ``batch_size`` pairs; the remainder of
    the shuffled order (fewer than ``batch_size`` pairs, different ones each epoch) is left out.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    order = order[: len(order) - len(order) % batch_size]
    window = batch_size * group
    grouped = []
    for start in range(0, len(order), window):
        grouped += sorted(order[start : start + window], key=lambda i: lengths[i])
    batches = [grouped[i : i + batch_size] for i in range(0, len(grouped), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
