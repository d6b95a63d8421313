"""The multi-positive contrastive loss: equals CLIP's loss without duplicates; duplicates are positives."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mlilt.training.loss import ContrastiveLoss


def _clip_loss(img, txt, scale):
    logits = scale.exp() * txt @ img.t()
    target = torch.arange(len(img))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def test_equals_clip_loss_when_every_picture_is_distinct():
    torch.manual_seed(0)
    img, txt = F.normalize(torch.randn(6, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)
    scale = torch.tensor(2.0)
    got = ContrastiveLoss()(img, txt, torch.arange(6), scale)
    assert torch.allclose(got, _clip_loss(img, txt, scale))


def test_a_repeated_picture_is_counted_once_and_both_captions_are_positives():
    torch.manual_seed(0)
    pictures = F.normalize(torch.randn(3, 8), dim=-1)
    txt = F.normalize(torch.randn(4, 8), dim=-1)
    ids = torch.tensor([7, 7, 8, 9])  # captions 0 and 1 describe the same picture
    img = pictures[[0, 0, 1, 2]]
    scale = torch.tensor(1.0)
    got = ContrastiveLoss()(img, txt, ids, scale)
    logits = scale.exp() * txt @ pictures.t()  # 4 captions x 3 distinct pictures
    t2i = F.cross_entropy(logits, torch.tensor([0, 0, 1, 2]))
    per_picture = logits.t()
    i2t = torch.stack(
        [
            torch.logsumexp(per_picture[0], 0) - torch.logsumexp(per_picture[0, :2], 0),
            torch.logsumexp(per_picture[1], 0) - per_picture[1, 2],
            torch.logsumexp(per_picture[2], 0) - per_picture[2, 3],
        ]
    ).mean()
    assert torch.allclose(got, (t2i + i2t) / 2)


def test_gradients_reach_embeddings_and_temperature():
    img = F.normalize(torch.randn(4, 8), dim=-1).requires_grad_()
    txt = F.normalize(torch.randn(4, 8), dim=-1).requires_grad_()
    scale = torch.tensor(1.0, requires_grad=True)
    ContrastiveLoss()(img, txt, torch.arange(4), scale).backward()
    assert img.grad.abs().sum() > 0 and txt.grad.abs().sum() > 0 and scale.grad is not None
