"""``mlilt eval``: a run (and the untouched base it holds) on many languages: retrieval and zero-shot.

"Base" is the run's ``reference-frozen/`` model: the same towers, untouched, with heads trained on
the same data and budget. Comparing a language's recall between the adapted model and the base
shows what the adaptation gained in its language and what it kept (or lost) in the others.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mlilt.constants import REFERENCE_DIR
from mlilt.data.prepare import PreparedData, prepare
from mlilt.data.records import CaptionRecord
from mlilt.features import open_rgb
from mlilt.model import DualEncoder
from mlilt.train import evaluate_table

PROTOCOL = (
    "Gallery: every distinct picture of the split that has a caption in the language; queries: each picture's "
    "primary caption (the CLDR short name for Emoji-CLDR). text->image: rank of the caption's own picture; "
    "image->text: rank of the best-placed of the picture's own captions (a hit is any of them). Ties count "
    "against the model. R@K = % of queries with rank <= K; mean recall averages R@1/5/10 of both directions. "
    "Zero-shot: each picture is classified among the CLDR emoji categories named in the language "
    "(e.g. 'wanyama au ulimwengu'), by similarity to the category name."
)


def language_records(lang: str, data: str = "emoji-cldr") -> list[CaptionRecord]:
    if data == "emoji-cldr":
        from mlilt.data.emoji_cldr import load_emoji_cldr

        return load_emoji_cldr(lang)
    from mlilt.data.files import load_caption_source

    return [r for r in load_caption_source(data, lang) if r.lang in (None, lang)]


def zero_shot(model: DualEncoder, data: PreparedData, lang: str, split: str = "test") -> dict[str, float] | None:
    """Top-1 / top-5 accuracy of classifying the split's pictures among the localised emoji categories."""
    from mlilt.data.emoji_categories import category_names, emoji_category
    from mlilt.data.emoji_cldr import load_manifest

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


@torch.no_grad()
def example_queries(model: DualEncoder, data: PreparedData, table, count: int = 4, k: int = 5) -> list[dict]:
    """A few captions (spread over the split, fixed choice) with their top-k pictures, for the report's grid."""
    pictures = sorted(set(table.picture.tolist()))
    if not pictures:
        return []
    rows = [round(i * (len(table) - 1) / max(count - 1, 1)) for i in range(min(count, len(table)))]
    if data.image_features:
        gallery_emb = model.embed_image_features(data.image_features["plain"][pictures].to(model.logit_scale.device))
    else:
        gallery_emb = model.embed_images([open_rgb(data.picture_paths[p]) for p in pictures])
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


def evaluate_language(model: DualEncoder, lang: str, data: str = "emoji-cldr", split: str = "test") -> dict:
    """Retrieval (both directions) and zero-shot classification of one language's split."""
    records = [r for r in language_records(lang, data) if r.split == split]
    if not records:
        raise ValueError(f"no {split} captions in {lang!r} for data {data!r}")
    prepared = prepare(records, model, eval_lang=lang, progress=False, splits=(split,))
    result = {
        "retrieval": evaluate_table(model, prepared, prepared.splits[split]),
        "examples": example_queries(model, prepared, prepared.splits[split]),
    }
    if data == "emoji-cldr":
        result["zero_shot"] = zero_shot(model, prepared, lang, split)
    return result


def evaluate_run(run: Path, langs: list[str], data: str = "emoji-cldr", split: str = "test") -> dict:
    """Every language, for the run's model and (when the run holds one) its untouched base."""
    from mlilt.adapter_files import load

    models = {"adapted": load(run)}
    if (run / REFERENCE_DIR).exists():
        models["base"] = load(run / REFERENCE_DIR)
    results: dict = {"run": str(run), "data": data, "split": split, "protocol": PROTOCOL, "languages": {}}
    bar = tqdm(total=len(langs) * len(models), desc="evaluating", unit="model-language", file=sys.stderr)
    for lang in langs:
        entry = {}
        for name, model in models.items():
            bar.set_postfix(lang=lang, model=name)
            entry[name] = evaluate_language(model, lang, data, split)
            bar.update(1)
        if "base" in entry:
            entry["change"] = {
                k: entry["adapted"]["retrieval"][k] - entry["base"]["retrieval"][k]
                for k in entry["adapted"]["retrieval"]
                if "_R@" in k or k == "mean_recall"
            }
        results["languages"][lang] = entry
        tqdm.write(
            f"  {lang}: text->image R@1 "
            + ", ".join(f"{name} {entry[name]['retrieval']['text_to_image_R@1']:.1f}" for name in models),
            file=sys.stderr,
        )
    bar.close()
    return results
