"""The text tower: any transformers encoder (XLM-R, mBERT, DistilmBERT, multilingual-e5, BERT) plus pooling.

Tokenisation happens outside ``forward`` (in the data pipeline), so the model only sees tensors.
"""

from __future__ import annotations

import warnings

import torch
import transformers
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from mlilt.config import TowerConfig
from mlilt.constants import OFFLINE_TEXT


class TextTower(nn.Module):
    """A transformers encoder whose token states are pooled into one vector per text.

    Args:
        encoder: The transformers model (an encoder returning ``last_hidden_state``).
        tokenizer: Its tokenizer.
        pooling: ``mean`` over non-padding tokens, or ``cls`` (the first token).
        prefix: Text put before every input (``"query: "`` for multilingual-e5).
        max_length: Tokens kept per text.
    """

    def __init__(
        self,
        encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        pooling: str = "mean",
        prefix: str = "",
        max_length: int = 64,
        name: str = "",
    ):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.prefix = prefix
        self.max_length = max_length
        self.name = name or getattr(encoder.config, "_name_or_path", "") or type(encoder).__name__

    @property
    def hidden_size(self) -> int:
        config = self.encoder.config
        return getattr(config, "hidden_size", None) or config.dim  # DistilBERT calls it ``dim``

    def tokenize(self, texts: list[str], padding: bool | str = True) -> dict[str, torch.Tensor]:
        """Tokenise texts (with the prefix), cut at ``max_length``."""
        return self.tokenizer(
            [self.prefix + t for t in texts],
            padding=padding,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt" if padding else None,
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return states[:, 0]
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def build_text_tower(config: TowerConfig) -> TextTower:
    """Load the tower a config names: the built-in offline e5-small, a Hub id, or a local folder."""
    name, prefix = config.name, config.prefix
    if name == OFFLINE_TEXT:
        from mlilt.towers.offline_e5 import ensure_e5_small

        source = str(ensure_e5_small())
        prefix = "query: " if prefix is None else prefix
    else:
        source = name
        if prefix is None:
            prefix = "query: " if "e5" in name.lower() else ""
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()  # its load report always lists the unused pooler
        transformers.logging.disable_progress_bar()
        try:
            encoder, loading = AutoModel.from_pretrained(source, output_loading_info=True)
        finally:
            transformers.logging.set_verbosity(verbosity)
            transformers.logging.enable_progress_bar()
    except OSError as err:
        raise OSError(
            f"could not load text model {name!r}: {err}\n"
            "Offline? Use the built-in tower (--text offline:multilingual-e5-small) or a local model folder."
        ) from err
    missing = [k for k in loading["missing_keys"] if not k.startswith("pooler.")]
    if missing:
        warnings.warn(
            f"text model {name!r}: {len(missing)} weights are not in the checkpoint and start random: {missing[:5]}"
        )
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # unused: we pool token states ourselves, so it is neither trained nor counted
    return TextTower(encoder, tokenizer, config.pooling, prefix, config.max_length, name=name)
