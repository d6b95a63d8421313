"""Retrieval metrics in both directions, as a flat dict with prefixed names.

Protocol:
- The gallery is every distinct picture of the split; the queries are its captions.
- text -> image: a caption's rank is the position of its own picture among all pictures.
- image -> text: a picture's rank is the position of its best-placed own caption among all captions
  (a hit is any of its captions).
- Ties are broken against the model: a positive tied with a negative counts as ranked below it.
- R@K is the percentage of queries with rank <= K; ``mean_recall`` averages R@1/5/10 of both
  directions; median ranks are 1-based.
"""

from __future__ import annotations

import torch

from mlilt.errors import NotFiniteError

RECALL_AT = (1, 5, 10)
PRIMARY_METRIC = "text_to_image_R@1"


def retrieval_metrics(similarity: torch.Tensor, caption_to_picture: torch.Tensor) -> dict[str, float]:
    """
    Args:
        similarity: (num_captions, num_pictures) scores; higher is better.
        caption_to_picture: (num_captions,) index of each caption's picture.

    Returns:
        ``text_to_image_R@1`` ... ``image_to_text_R@10``, ``*_median_rank``, ``mean_recall``.
    """
    similarity = similarity.float()
    bad = int((~torch.isfinite(similarity)).sum())
    if bad:  # a NaN compares false with everything, so it would rank first: never report such a recall
        raise NotFiniteError(
            f"{bad} of {similarity.numel()} similarity scores are NaN or infinite: the model's weights or features "
            "are not finite (a diverged run, or a damaged file); no recall is reported"
        )
    n_captions, n_pictures = similarity.shape
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
    for direction, ranks in (("text_to_image", t2i_rank), ("image_to_text", i2t_rank)):
        for k in RECALL_AT:
            metrics[f"{direction}_R@{k}"] = 100.0 * (ranks <= k).float().mean().item()
        metrics[f"{direction}_median_rank"] = ranks.float().median().item()
    metrics["mean_recall"] = (
        sum(metrics[f"{d}_R@{k}"] for d in ("text_to_image", "image_to_text") for k in RECALL_AT) / 6
    )
    metrics["num_captions"] = float(n_captions)
    metrics["num_pictures"] = float(int(has_caption.sum()))
    return metrics


def with_prefix(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in metrics.items()}
