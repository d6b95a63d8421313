"""The text tower: any transformers encoder (XLM-R, mBERT, DistilmBERT, multilingual-e5, BERT) plus pooling.

Tokenisation happens outside ``forward`` (in the data pipeline), so the model only sees tensors.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
import transformers
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from mlilt.errors import TowerError, first_line
from mlilt.threads import keep_fitted


class TextTower(nn.Module):
    """A transformers encoder whose token states are pooled into one vector per text.

    Args:
        encoder: The transformers model (an encoder returning ``last_hidden_state``).
        tokenizer: Its tokenizer.
        pooling: ``mean`` over non-padding tokens, or ``cls`` (the first token).
        prefix: Text put before every input (``"query: "`` for multilingual-e5).
        max_length: Tokens kept per text.
        name: The name it was built from (recorded in adapter files).
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

    @functools.cached_property
    def token_fingerprint(self) -> str | None:
        """A hash of what decides a text's token ids (the tokenizer's full definition, prefix, length limit);
        None for a tokenizer that cannot be written out whole (then token ids are not kept on disk)."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        return hashlib.sha256(f"{backend.to_str()}|{self.prefix}|{self.max_length}".encode()).hexdigest()

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Unpadded token ids of each text (what the data pipeline stores)."""
        return self.tokenize(texts, padding=False)["input_ids"] if texts else []

    def pad(self, token_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad token id lists into ``(input_ids, attention_mask)``."""
        width = max(len(t) for t in token_lists)
        ids = torch.full((len(token_lists), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(token_lists), width), dtype=torch.long)
        for i, tokens in enumerate(token_lists):
            ids[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[i, : len(tokens)] = 1
        return ids, mask

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return states[:, 0]
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    @torch.no_grad()
    def features(
        self,
        token_lists: Sequence[Sequence[int]],
        batch_size: int = 256,
        progress: bool = True,
        desc: str = "text",
        write: Callable[[list[int], torch.Tensor], None] | None = None,
    ) -> torch.Tensor | None:
        """Pooled features of every token list, as a frozen tower gives them (computed once per run).

        With ``write``, each block of rows goes to ``write(positions, rows)`` as it is computed and nothing is
        returned (for more captions than fit in memory).
        """
        self.eval()
        device = next(self.parameters()).device
        out = []
        lengths = getattr(token_lists, "lengths", None)  # a TokenTable has them as one array
        if lengths is None:
            lengths = [len(t) for t in token_lists]
        order = np.argsort(np.asarray(lengths), kind="stable").tolist()  # similar lengths pad less
        for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, file=sys.stderr):
            keep_fitted()
            block = order[start : start + batch_size]
            ids, mask = self.pad([token_lists[i] for i in block])
            rows = self(ids.to(device), mask.to(device)).float().cpu()
            if write is None:
                out.append(rows)
            else:
                write(block, rows)
        if write is not None:
            return None
        features = torch.cat(out) if out else torch.empty(0, self.hidden_size)
        result = torch.empty_like(features)
        result[torch.tensor(order, dtype=torch.long)] = features
        return result


def load_transformers_tower(name: str, source: str, pooling: str, prefix: str, max_length: int) -> TextTower:
    """A :class:`TextTower` from a transformers folder or Hub id ``source``, recorded under ``name``."""
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
    except (OSError, ValueError) as err:
        raise TowerError(
            f"could not load text model {name!r}: {first_line(err)}. "
            "Offline? Use the built-in tower (--text offline:multilingual-e5-small) or a local model folder."
        ) from err
    missing = [k for k in loading["missing_keys"] if not k.startswith("pooler.")]
    if missing:
        warnings.warn(
            f"text model {name!r}: {len(missing)} weights are not in the checkpoint and start random: {missing[:5]}"
        )
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # unused: we pool token states ourselves, so it is neither trained nor counted
    return TextTower(encoder, tokenizer, pooling, prefix, max_length, name=name)
