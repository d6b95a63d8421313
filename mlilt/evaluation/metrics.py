"""Retrieval metrics in both directions, as a flat dict with prefixed names, under a stated protocol.

Common to both protocols:

- The gallery is every distinct picture of the split; the queries are its captions.
- text -> image: a caption's rank is the position of its own picture among all pictures.
- image -> text: a picture's rank is the position of its best-placed own caption among all captions
  (a hit is any of its captions).
- R@K is the percentage of queries with a hit in the first K; ``mean_recall`` averages R@1/5/10 of both
  directions.

How ties are broken is where they differ:

- ``strict`` (mlilt's default): a positive tied with a negative counts as ranked below it, so a tie never
  helps the model. Median ranks (1-based) are reported too.
- ``clip-benchmark``: as LAION's CLIP_benchmark (``zeroshot_retrieval.recall_at_k``), the protocol behind
  published multilingual numbers such as open_clip's: a hit is a positive among ``torch.topk``'s first K,
  so tied scores fall in index order. Without ties both protocols give the same R@K.
"""

from __future__ import annotations

import torch

from mlilt.errors import ConfigError, NotFiniteError

RECALL_AT = (1, 5, 10)
PRIMARY_METRIC = "text_to_image_R@1"
PROTOCOLS = {
    "strict": "ties count against the model (a positive tied with a negative ranks below it)",
    "clip-benchmark": "LAION CLIP_benchmark's: a hit is a positive among torch.topk's first K (ties in index "
    "order), the protocol of published multilingual numbers such as open_clip's",
}
DIRECTIONS = ("text_to_image", "image_to_text")


def retrieval_metrics(
    similarity: torch.Tensor, caption_to_picture: torch.Tensor, protocol: str = "strict"
) -> dict[str, float]:
    """
    Args:
        similarity: (num_captions, num_pictures) scores; higher is better.
        caption_to_picture: (num_captions,) index of each caption's picture.
        protocol: ``strict`` or ``clip-benchmark`` (see the module's docstring).

    Returns:
        ``text_to_image_R@1`` ... ``image_to_text_R@10``, ``mean_recall``, the counts, and with ``strict``
        the ``*_median_rank`` too.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    similarity = similarity.float()
    bad = int((~torch.isfinite(similarity)).sum())
    if bad:  # a NaN compares false with everything, so it would rank first: never report such a recall
        raise NotFiniteError(
            f"{bad} of {similarity.numel()} similarity scores are NaN or infinite: the model's weights or features "
            "are not finite (a diverged run, or a damaged file); no recall is reported"
        )
    n_captions, n_pictures = similarity.shape
    if protocol == "clip-benchmark":
        return _clip_benchmark(similarity, caption_to_picture)
    rows = torch.arange(n_captions)
    positive = similarity[rows, caption_to_picture]
    # text -> image: pictures scoring >= the own one, other than the own one, come first.
    t2i_rank = (similarity >= positive[:, None]).sum(1)  # includes the own picture -> 1-based

    # image -> text: per picture, the best own caption's score; every other caption >= it ranks above.
    own = torch.zeros(n_pictures, n_captions, dtype=torch.bool)
    own[caption_to_picture, rows] = True
    by_picture = similarity.t()  # (P, C)
    best_own = by_picture.masked_fill(~own, -torch.inf).max(1).values
    has_caption = own.any(1)
    i2t_rank = ((by_picture >= best_own[:, None]) & ~own).sum(1) + 1
    i2t_rank = i2t_rank[has_caption]

    metrics: dict[str, float] = {}
    for direction, ranks in zip(DIRECTIONS, (t2i_rank, i2t_rank)):
        for k in RECALL_AT:
            metrics[f"{direction}_R@{k}"] = 100.0 * (ranks <= k).float().mean().item()
        metrics[f"{direction}_median_rank"] = ranks.float().median().item()
    return _with_summary(metrics, n_captions, int(has_caption.sum()))


def _clip_benchmark(similarity: torch.Tensor, caption_to_picture: torch.Tensor) -> dict[str, float]:
    """R@K as CLIP_benchmark computes it: any positive among ``torch.topk``'s first K (ties in index order)."""
    positives = torch.zeros_like(similarity, dtype=torch.bool)
    positives[torch.arange(len(similarity)), caption_to_picture] = True
    has_caption = positives.any(0)
    metrics: dict[str, float] = {}
    for direction, scores, pairs in zip(
        DIRECTIONS, (similarity, similarity.t()[has_caption]), (positives, positives.t()[has_caption])
    ):
        for k in RECALL_AT:
            top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices
            hit = pairs.gather(1, top).any(1)
            metrics[f"{direction}_R@{k}"] = 100.0 * hit.float().mean().item()
    return _with_summary(metrics, len(similarity), int(has_caption.sum()))


def _with_summary(metrics: dict[str, float], n_captions: int, n_pictures: int) -> dict[str, float]:
    metrics["mean_recall"] = sum(metrics[f"{d}_R@{k}"] for d in DIRECTIONS for k in RECALL_AT) / 6
    metrics["num_captions"] = float(n_captions)
    metrics["num_pictures"] = float(n_pictures)
    return metrics


def with_prefix(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in metrics.items()}
