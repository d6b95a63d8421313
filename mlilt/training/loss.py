"""Symmetric InfoNCE where every caption of the same picture counts as a positive.

A batch holds (picture, caption) pairs, and a picture may appear more than once in it (its name and
a keyword, say). Pictures are de-duplicated first, so the softmax never sees a picture twice:

- text -> image: cross-entropy of each caption over the batch's distinct pictures;
- image -> text: for each distinct picture, ``-log(sum over its captions / sum over all captions)``.

Under ``torch.distributed`` the embeddings and ids of every process are gathered (with gradients),
so each process sees every negative of the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mlilt.training.distributed import gather_ids, gather_with_grad


class ContrastiveLoss(nn.Module):
    """Symmetric multi-positive InfoNCE over (gathered) embeddings."""

    def forward(
        self,
        image_emb: torch.Tensor,
        text_emb: torch.Tensor,
        image_ids: torch.Tensor,
        logit_scale: torch.Tensor,
    ) -> torch.Tensor:
        """
        Args:
            image_emb: (B, D) normalised picture embeddings, one row per pair.
            text_emb: (B, D) normalised caption embeddings.
            image_ids: (B,) integer id of each pair's picture.
            logit_scale: Log of the inverse temperature.
        """
        image_emb, text_emb, image_ids = gather_with_grad(image_emb), gather_with_grad(text_emb), gather_ids(image_ids)
        unique_ids, caption_to_picture = torch.unique(image_ids, return_inverse=True)
        first = torch.full((len(unique_ids),), len(image_ids), dtype=torch.long, device=image_ids.device)
        first = first.scatter_reduce(
            0, caption_to_picture, torch.arange(len(image_ids), device=image_ids.device), "amin"
        )
        pictures = image_emb[first]  # (P, D): each distinct picture once

        logits = logit_scale.exp().clamp(max=100.0) * text_emb @ pictures.t()  # (B, P)
        text_to_image = F.cross_entropy(logits, caption_to_picture)

        positives = caption_to_picture.unsqueeze(0) == torch.arange(len(unique_ids), device=logits.device)[:, None]
        per_picture = logits.t()  # (P, B)
        image_to_text = (
            torch.logsumexp(per_picture, dim=1)
            - torch.logsumexp(per_picture.masked_fill(~positives, -torch.inf), dim=1)
        ).mean()
        return (text_to_image + image_to_text) / 2
