"""Retrieval metrics against hand-computed cases: perfect, reversed, ties, several captions per picture."""

from __future__ import annotations

import pytest
import torch

from mlilt.evaluation.metrics import retrieval_metrics


def test_perfect_ranking():
    m = retrieval_metrics(torch.eye(4), torch.arange(4))
    assert m["text_to_image_R@1"] == 100.0 and m["image_to_text_R@1"] == 100.0
    assert m["text_to_image_median_rank"] == 1.0 and m["mean_recall"] == 100.0


def test_reversed_ranking_puts_the_positive_last():
    # 12 pictures; each caption scores its own picture lowest.
    n = 12
    sim = -torch.eye(n)
    m = retrieval_metrics(sim, torch.arange(n))
    # every other picture ties at 0 above the positive (-1): rank n for every caption
    assert m["text_to_image_R@1"] == 0.0 and m["text_to_image_R@10"] == 0.0
    assert m["text_to_image_median_rank"] == n
    assert m["image_to_text_median_rank"] == n


def test_ties_count_against_the_model():
    # caption 0 scores pictures 0 and 1 equally: pessimistic rank 2, so not a hit at 1.
    sim = torch.tensor([[0.5, 0.5, 0.1], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    m = retrieval_metrics(sim, torch.tensor([0, 1, 2]))
    assert m["text_to_image_R@1"] == pytest.approx(200 / 3)
    assert m["text_to_image_R@5"] == 100.0


def test_several_captions_per_picture():
    # pictures A (captions 0, 1) and B (caption 2). Scores (caption x picture):
    sim = torch.tensor(
        [
            [0.1, 0.9],  # caption 0 of A prefers B: t->i rank 2
            [0.8, 0.2],  # caption 1 of A prefers A: rank 1
            [0.3, 0.7],  # caption 2 of B prefers B: rank 1
        ]
    )
    m = retrieval_metrics(sim, torch.tensor([0, 0, 1]))
    assert m["text_to_image_R@1"] == pytest.approx(200 / 3)
    # image->text: A's best own caption is 1 (0.8): above every other caption -> hit.
    # B's own caption 2 scores 0.7 but caption 0 (of A) scores 0.9 for B -> rank 2.
    assert m["image_to_text_R@1"] == 50.0
    assert m["image_to_text_R@5"] == 100.0
    assert m["num_pictures"] == 2 and m["num_captions"] == 3


# Four captions of three pictures with ties (caption x picture), chosen so the two protocols differ:
TIES = torch.tensor(
    [
        [0.9, 0.9, 0.1],  # caption 0 of picture 0: tied with picture 1
        [0.2, 0.5, 0.5],  # caption 1 of picture 0: below both others
        [0.3, 0.7, 0.7],  # caption 2 of picture 1: tied with picture 2
        [0.0, 0.0, 0.0],  # caption 3 of picture 2: tied with everything
    ]
)
TIES_PICTURE = torch.tensor([0, 0, 1, 2])


def test_ties_under_both_protocols_by_hand():
    strict = retrieval_metrics(TIES, TIES_PICTURE, protocol="strict")
    # text -> image ranks, ties against the model: 2, 3, 2, 3 -> no caption at rank 1.
    assert strict["text_to_image_R@1"] == 0.0 and strict["text_to_image_R@5"] == 100.0
    assert strict["text_to_image_median_rank"] == 2.0
    # image -> text: picture 0's best own caption (0.9) is first; picture 1's (0.7) is below caption 0's 0.9;
    # picture 2's (0.0) is below three others.
    assert strict["image_to_text_R@1"] == pytest.approx(100 / 3)
    clip = retrieval_metrics(TIES, TIES_PICTURE, protocol="clip-benchmark")
    # torch.topk puts a tie in index order: caption 0 finds picture 0, caption 2 finds picture 1 at rank 1.
    assert clip["text_to_image_R@1"] == 50.0 and clip["text_to_image_R@5"] == 100.0
    assert clip["image_to_text_R@1"] == pytest.approx(100 / 3)
    assert "text_to_image_median_rank" not in clip
    without_ties = torch.tensor([[0.9, 0.1], [0.3, 0.4], [0.2, 0.8]])
    targets = torch.tensor([0, 0, 1])
    a, b = (retrieval_metrics(without_ties, targets, protocol=p) for p in ("strict", "clip-benchmark"))
    assert all(a[k] == b[k] for k in b)  # the protocols agree wherever nothing ties


def test_the_clip_benchmark_protocol_matches_the_clip_benchmark_package():
    """LAION's own recall_at_k, called as its evaluate() calls it (batches of rows, > 0 = hit), on ties."""
    zeroshot_retrieval = pytest.importorskip("clip_benchmark.metrics.zeroshot_retrieval")
    generator = torch.Generator().manual_seed(0)
    cases = [(TIES, TIES_PICTURE)]
    for n_pictures, n_captions in ((20, 50), (64, 64)):
        scores = torch.randint(0, 4, (n_captions, n_pictures), generator=generator).float()  # many ties
        targets = torch.cat([torch.arange(n_pictures), torch.randint(0, n_pictures, (n_captions - n_pictures,))])
        cases.append((scores, targets))
    for scores, targets in cases:
        positives = torch.zeros_like(scores, dtype=torch.bool)
        positives[torch.arange(len(scores)), targets] = True
        ours = retrieval_metrics(scores, targets, protocol="clip-benchmark")
        for k in (1, 5, 10):
            theirs = {
                "text_to_image": zeroshot_retrieval.batchify(
                    zeroshot_retrieval.recall_at_k, scores, positives, 8, "cpu", k=min(k, scores.shape[1])
                ),
                "image_to_text": zeroshot_retrieval.batchify(
                    zeroshot_retrieval.recall_at_k, scores.T, positives.T, 8, "cpu", k=min(k, scores.shape[0])
                ),
            }
            for direction, recall in theirs.items():
                assert ours[f"{direction}_R@{k}"] == pytest.approx(100 * (recall > 0).float().mean().item())
