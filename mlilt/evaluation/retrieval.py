"""Embedding the rows of a prepared split and scoring retrieval on it (validation, test, reports).

Pictures come from cached frozen features when the vision tower is frozen, else through the tower; captions
from cached text features when the text tower is frozen, else through the tower.
"""

from __future__ import annotations

import torch

from mlilt.data.prepare import CaptionTable, PreparedData
from mlilt.evaluation.metrics import PROTOCOLS, retrieval_metrics
from mlilt.model import DualEncoder


def embed_pairs(model: DualEncoder, data: PreparedData, table: CaptionTable, idx: list[int], view: str | None):
    """Picture and caption embeddings of the pairs ``idx`` of a table, and the pairs' picture rows."""
    device = model.logit_scale.device
    pictures = table.picture[idx]
    if data.image_features:
        image_emb = model.embed_image_features(data.image_features[view or "plain"][pictures].to(device))
    else:
        pixels = torch.stack(
            [model.vision.preprocess(model.vision.open(data.picture_paths[i]), view or "plain") for i in pictures]
        )
        image_emb = model.encode_image(pixels.to(device))
    if table.text_features is not None:
        text_emb = model.embed_text_features(table.text_features[idx].to(device))
    else:
        ids, mask = model.text.pad([table.tokens[i] for i in idx])
        text_emb = model.encode_text(ids.to(device), mask.to(device))
    return image_emb, text_emb, pictures.to(device)


@torch.no_grad()
def similarities(
    model: DualEncoder, data: PreparedData, table: CaptionTable, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption x picture cosine scores of one split (its distinct pictures) and each caption's picture column."""
    model.eval()
    pictures = sorted(set(table.picture.tolist()))
    column = {p: i for i, p in enumerate(pictures)}
    image_emb, text_emb = [], []
    for start in range(0, len(table), batch_size):
        idx = list(range(start, min(start + batch_size, len(table))))
        img, txt, _ = embed_pairs(model, data, table, idx, "plain")
        image_emb.append(img.float().cpu())
        text_emb.append(txt.float().cpu())
    image_emb, text_emb = torch.cat(image_emb), torch.cat(text_emb)
    first = {}
    for i, p in enumerate(table.picture.tolist()):
        first.setdefault(p, i)
    gallery = image_emb[[first[p] for p in pictures]]
    targets = torch.tensor([column[p] for p in table.picture.tolist()])
    return text_emb @ gallery.t(), targets


def evaluate_table(model: DualEncoder, data: PreparedData, table: CaptionTable, protocol: str = "strict") -> dict:
    """Retrieval metrics of one split: its captions against its distinct pictures, under ``protocol``."""
    return retrieval_metrics(*similarities(model, data, table), protocol=protocol)


def evaluate_protocols(model: DualEncoder, data: PreparedData, table: CaptionTable) -> dict[str, dict]:
    """Retrieval metrics of one split under every protocol (the embeddings computed once)."""
    scores, targets = similarities(model, data, table)
    return {protocol: retrieval_metrics(scores, targets, protocol=protocol) for protocol in PROTOCOLS}


@torch.no_grad()
def example_queries(model: DualEncoder, data: PreparedData, table: CaptionTable, count: int = 4, k: int = 5) -> list:
    """A few captions (spread over the split, fixed choice) with their top-k pictures, for the report's grid."""
    pictures = sorted(set(table.picture.tolist()))
    if not pictures:
        return []
    rows = [round(i * (len(table) - 1) / max(count - 1, 1)) for i in range(min(count, len(table)))]
    if data.image_features:
        gallery_emb = model.embed_image_features(data.image_features["plain"][pictures].to(model.logit_scale.device))
    else:
        gallery_emb = model.embed_images([model.vision.open(data.picture_paths[p]) for p in pictures])
    query_emb = model.embed_texts([table.captions[r] for r in rows]).to(gallery_emb.device)
    top = (query_emb @ gallery_emb.t()).topk(min(k, len(pictures)), dim=1).indices.tolist()
    return [
        {
            "query": table.captions[r],
            "target": data.picture_paths[int(table.picture[r])],
            "top": [data.picture_paths[pictures[j]] for j in idx],
            "hits": [pictures[j] == int(table.picture[r]) for j in idx],
        }
        for r, idx in zip(rows, top)
    ]
