"""Zero-shot classification of the Emoji-CLDR pictures among CLDR's emoji categories named in a language."""

from __future__ import annotations

import torch

from mlilt.data.emoji_categories import category_names, emoji_category
from mlilt.data.emoji_cldr import load_manifest
from mlilt.data.prepare import PreparedData
from mlilt.model import DualEncoder


def zero_shot(model: DualEncoder, data: PreparedData, lang: str, split: str = "test") -> dict[str, float] | None:
    """Top-1 / top-5 accuracy of classifying the split's pictures among the localised emoji categories."""
    names = category_names(lang)
    if len(names) < 2 or not data.image_features:
        return None
    emoji_of = {p["image_id"]: p["emoji"].replace("\ufe0f", "") for p in load_manifest()["pictures"]}
    categories = emoji_category()
    labels = sorted(names)
    rows, targets = [], []
    for row in sorted(set(data.splits[split].picture.tolist())):
        category = categories.get(emoji_of.get(data.picture_ids[row], ""))
        if category in names:
            rows.append(row)
            targets.append(labels.index(category))
    if not rows:
        return None
    with torch.no_grad():
        image = model.embed_image_features(data.image_features["plain"][rows].to(model.logit_scale.device)).cpu()
        text = model.embed_texts([names[c] for c in labels]).cpu()
    ranking = (image @ text.t()).argsort(dim=1, descending=True)
    hit_rank = (ranking == torch.tensor(targets)[:, None]).float().argmax(1)
    return {
        "top1": 100.0 * (hit_rank < 1).float().mean().item(),
        "top5": 100.0 * (hit_rank < 5).float().mean().item(),
        "num_pictures": float(len(rows)),
        "num_classes": float(len(labels)),
        "chance_top1": 100.0 / len(labels),
    }
