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
