"""The dual encoder: two towers, two projection heads into a shared space, and a learned temperature."""

from __future__ import annotations

import math
import shutil
import weakref
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from mlilt.config import ModelConfig
from mlilt.data.prepare import PreparedData, prepare
from mlilt.data.records import SPLITS, CaptionRecord
from mlilt.data.tokens import TokenTable, tokenize_all
from mlilt.feature_files import RowWriter
from mlilt.features import IN_MEMORY_BYTES, FeatureTable, image_features, spill_folder
from mlilt.towers.registry import build_text_tower, build_vision_tower
from mlilt.towers.text import TextTower
from mlilt.towers.vision import VisionTower
from mlilt.tuning.parameters import ParameterCount, count_parameters
from mlilt.tuning.registry import FROZEN, apply_method


class DualEncoder(nn.Module):
    """CLIP-style image-text model; L2-normalised embeddings, similarity = cosine * ``logit_scale.exp()``.

    The vision tower always runs in eval mode: its BatchNorm statistics are never updated, which
    keeps a frozen tower's features identical to the cached ones.
    """

    def __init__(self, vision: VisionTower, text: TextTower, config: ModelConfig):
        super().__init__()
        self.config = config
        self.vision = vision
        self.text = text
        self.image_head = nn.Linear(vision.num_features, config.embed_dim)
        self.text_head = nn.Linear(text.hidden_size, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.init_temperature)))

    def train(self, mode: bool = True) -> DualEncoder:
        super().train(mode)
        self.vision.eval()
        return self

    @property
    def vision_frozen(self) -> bool:
        return self.config.vision.method == FROZEN

    @property
    def text_frozen(self) -> bool:
        return self.config.text.method == FROZEN

    # --- from tower features (what training uses when a tower is frozen and its features are cached)
    def embed_image_features(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_head(features), dim=-1)

    def embed_text_features(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_head(features), dim=-1)

    # --- from model inputs
    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.embed_image_features(self.vision(pixels))

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.embed_text_features(self.text(input_ids, attention_mask))

    # --- convenience for people: raw texts and pictures in, embeddings out
    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Normalised embeddings of raw texts (tokenised here, in batches)."""
        self.eval()
        device = self.logit_scale.device
        out = []
        for start in range(0, len(texts), batch_size):
            batch = self.text.tokenize(list(texts[start : start + batch_size]))
            out.append(self.encode_text(batch["input_ids"].to(device), batch["attention_mask"].to(device)).cpu())
        return torch.cat(out) if out else torch.empty(0, self.config.embed_dim)

    @torch.no_grad()
    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> torch.Tensor:
        """Normalised embeddings of PIL pictures (preprocessed with the tower's own data config)."""
        self.eval()
        device = self.logit_scale.device
        out = []
        for start in range(0, len(images), batch_size):
            pixels = torch.stack([self.vision.preprocess(im) for im in images[start : start + batch_size]])
            out.append(self.encode_image(pixels.to(device)).cpu())
        return torch.cat(out) if out else torch.empty(0, self.config.embed_dim)

    def parameter_report(self) -> dict[str, ParameterCount]:
        """Trainable / total parameters per part and for the whole model."""
        heads = nn.ModuleList([self.image_head, self.text_head])
        report = {
            "vision": count_parameters(self.vision),
            "text": count_parameters(self.text),
            "heads": count_parameters(heads),
            "total": count_parameters(self),
        }
        return report


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every trainable tensor by its state-dict name (adapters, LayerNorms, heads, temperature...)."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def build_model(config: ModelConfig, seed: int = 0) -> DualEncoder:
    """Load both towers, then :func:`assemble` them."""
    return assemble(build_vision_tower(config.vision), build_text_tower(config.text), config, seed)


def assemble(vision: VisionTower, text: TextTower, config: ModelConfig, seed: int = 0) -> DualEncoder:
    """Apply each tower's tuning method and add heads and temperature; the seed fixes every new weight."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        apply_method(vision, config.vision)
        apply_method(text, config.text)
        model = DualEncoder(vision, text, config)
    return model


def text_features(
    model: DualEncoder, tokens: TokenTable, progress: bool = True, desc: str = "text features"
) -> torch.Tensor | FeatureTable:
    """A frozen text tower's features of every caption: a tensor, or for more than :data:`IN_MEMORY_BYTES` a table
    read by row from a temporary file (removed when the table is no longer used, or by the next run if this
    process was killed)."""
    hidden = model.text.hidden_size
    if len(tokens) * hidden * 4 <= IN_MEMORY_BYTES:
        return model.text.features(tokens, progress=progress, desc=desc)
    folder = spill_folder()
    writer = RowWriter(folder / "text-features.safetensors", len(tokens), hidden)
    model.text.features(tokens, progress=progress, desc=desc, write=lambda rows, block: writer.write(rows, block))
    table = FeatureTable([writer.finish()], np.zeros(len(tokens), np.int64), np.arange(len(tokens)), hidden)
    weakref.finalize(table, shutil.rmtree, folder, True)
    return table


def prepare_data(
    records: list[CaptionRecord],
    model: DualEncoder,
    eval_lang: str | None = None,
    progress: bool = True,
    splits: tuple[str, ...] = SPLITS,
) -> PreparedData:
    """:func:`mlilt.data.prepare.prepare` with ``model``'s towers: its tokenizer, and the features of whichever
    tower is frozen (pictures through the on-disk feature cache, captions once per run: see :func:`text_features`)."""

    def pictures(paths: list[str], view: str):
        return image_features(model.vision, paths, view, progress=progress)

    def texts(tokens: TokenTable, split: str) -> torch.Tensor | FeatureTable:
        return text_features(model, tokens, progress=progress, desc=f"text features ({split})")

    def tokenize(texts: list[str]) -> TokenTable:
        return tokenize_all(texts, model.text.token_ids, model.text.token_fingerprint)

    return prepare(
        records,
        tokenize,
        picture_features=pictures if model.vision_frozen else None,
        views=model.config.image_views,
        text_features=texts if model.text_frozen else None,
        eval_lang=eval_lang,
        splits=splits,
    )
