"""Turn validated caption records into tensors the training loop can index: the data side of a run.

Pictures become rows of a feature table (computed once by a frozen vision tower and cached on disk) or,
when the vision tower is trained, paths loaded per step. Captions are tokenised once, here, never inside
``forward``. The towers come in as functions (tokenise, picture features, text features), so this module
knows nothing of the model; :func:`mlilt.model.prepare_data` passes a model's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from mlilt.data.records import SPLITS, CaptionRecord
from mlilt.data.tokens import TokenTable
from mlilt.features import CacheStats, FeatureTable

Tokenize = Callable[[list[str]], "TokenTable | list[list[int]]"]
PictureFeatures = Callable[[list[str], str], tuple[FeatureTable, CacheStats]]  # (paths, view) -> (rows, stats)
TextFeatures = Callable[[list[list[int]], str], torch.Tensor]  # (token lists, split name) -> rows


@dataclass
class CaptionTable:
    """The captions of one split: each row a caption with the index of its picture."""

    captions: list[str]
    picture: torch.Tensor  # (N,) long: row in PreparedData.picture_paths
    tokens: TokenTable
    text_features: torch.Tensor | FeatureTable | None = None  # (N, hidden) when the text tower is frozen

    def __post_init__(self):
        if not isinstance(self.tokens, TokenTable):
            self.tokens = TokenTable.from_lists(self.tokens)

    def __len__(self) -> int:
        return len(self.captions)


@dataclass
class PreparedData:
    picture_ids: list[str]
    picture_paths: list[str]
    splits: dict[str, CaptionTable]
    image_features: dict[str, FeatureTable] = field(default_factory=dict)  # view -> (P, D); empty if trained
    cache_stats: dict[str, CacheStats] = field(default_factory=dict)


def pictures_of(records: list[CaptionRecord]) -> tuple[list[str], list[str]]:
    """The distinct pictures of ``records``: their ids (sorted) and each one's file (the first record's)."""
    first_path: dict[str, str] = {}
    for r in records:
        first_path.setdefault(r.image_id, r.image)
    picture_ids = sorted(first_path)
    return picture_ids, [first_path[i] for i in picture_ids]


def picture_paths(records: list[CaptionRecord]) -> list[str]:
    """The file of each distinct picture of ``records``, in the order :func:`prepare` gives them rows."""
    return pictures_of(records)[1]


def prepare(
    records: list[CaptionRecord],
    tokenize: Tokenize,
    picture_features: PictureFeatures | None = None,
    views: Sequence[str] = ("plain",),
    text_features: TextFeatures | None = None,
    eval_lang: str | None = None,
    splits: tuple[str, ...] = SPLITS,
) -> PreparedData:
    """Index pictures, compute frozen features, tokenise captions.

    Training uses every caption of the train split; validation and test use only the primary
    captions (``primary=True``) in ``eval_lang`` (all languages if None). Only ``splits`` are built.

    Args:
        records: Validated records.
        tokenize: Texts -> unpadded token ids.
        picture_features: A frozen vision tower's features for picture paths and a view (None: the tower trains).
        views: Views whose features are computed.
        text_features: A frozen text tower's features for token lists (None: the tower trains).
        eval_lang: Language of the validation and test captions.
        splits: The splits to build.
    """
    picture_ids, paths = pictures_of(records)
    row = {pid: i for i, pid in enumerate(picture_ids)}

    def table(rows: list[CaptionRecord]) -> CaptionTable:
        captions = [r.caption for r in rows]
        return CaptionTable(
            captions, torch.tensor([row[r.image_id] for r in rows], dtype=torch.long), tokenize(captions)
        )

    def keep_for_eval(r: CaptionRecord) -> bool:
        return r.primary and (eval_lang is None or r.lang in (None, eval_lang))

    tables = {
        name: table([r for r in records if r.split == name and (name == "train" or keep_for_eval(r))])
        for name in splits
    }
    data = PreparedData(picture_ids, paths, tables)
    if picture_features is not None:
        for view in views:
            data.image_features[view], data.cache_stats[view] = picture_features(paths, view)
    if text_features is not None:
        for name, split in tables.items():
            split.text_features = text_features(split.tokens, name)
    return data


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
