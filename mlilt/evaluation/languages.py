"""``mlilt eval``: a run (and the untouched base it holds) on many languages: retrieval and zero-shot.

"Base" is the run's ``reference-frozen/`` model: the same towers, untouched, with heads trained on
the same data and budget. Comparing a language's recall between the adapted model and the base
shows what the adaptation gained in its language and what it kept (or lost) in the others.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm.auto import tqdm

from mlilt.constants import REFERENCE_DIR
from mlilt.data.records import CaptionRecord
from mlilt.data.sources import load_records, resolve
from mlilt.errors import DataError
from mlilt.evaluation.metrics import PROTOCOLS
from mlilt.evaluation.published import COMPARABLE_SETS, published_results
from mlilt.evaluation.retrieval import evaluate_protocols, evaluate_table, example_queries
from mlilt.evaluation.zero_shot import zero_shot
from mlilt.hub.loading import load
from mlilt.model import DualEncoder, prepare_data

PROTOCOL = (
    "Gallery: every distinct picture of the split that has a caption in the language; queries: each picture's "
    "primary caption (the CLDR short name for Emoji-CLDR). text->image: rank of the caption's own picture; "
    "image->text: rank of the best-placed of the picture's own captions (a hit is any of them). Ties: {ties}. "
    "R@K = % of queries with a hit in the first K; mean recall averages R@1/5/10 of both directions. "
    "Zero-shot: each picture is classified among the CLDR emoji categories named in the language "
    "(e.g. 'wanyama au ulimwengu'), by similarity to the category name."
)


def language_records(lang: str, data: str = "emoji-cldr") -> list[CaptionRecord]:
    """The records of ``data`` in ``lang`` (records without a language count as ``lang``)."""
    return [r for r in load_records(data, lang) if r.lang in (None, lang)]


def evaluate_language(
    model: DualEncoder, lang: str, data: str = "emoji-cldr", split: str = "test", protocol: str = "strict"
) -> dict:
    """Retrieval (both directions, every protocol) and zero-shot classification of one language's split.

    ``retrieval`` holds the metrics under ``protocol``, ``retrieval_by_protocol`` under each. For a public set
    published numbers exist for (:data:`mlilt.evaluation.published.COMPARABLE_SETS`), ``comparable`` holds this
    model's numbers on the set as CLIP_benchmark builds it, beside the published ones.
    """
    records = [r for r in language_records(lang, data) if r.split == split]
    if not records:
        raise DataError(f"no {split} captions in {lang!r} for data {data!r}")
    prepared = prepare_data(records, model, eval_lang=lang, progress=False, splits=(split,))
    by_protocol = evaluate_protocols(model, prepared, prepared.splits[split])
    result = {
        "retrieval": by_protocol[protocol],
        "retrieval_by_protocol": by_protocol,
        "examples": example_queries(model, prepared, prepared.splits[split]),
    }
    if data == "emoji-cldr":
        result["zero_shot"] = zero_shot(model, prepared, lang, split)
    source = resolve(data)[0].name
    if source in COMPARABLE_SETS:
        result["comparable"] = comparable(model, records, lang, source)
    return result


def comparable(model: DualEncoder, records: list[CaptionRecord], lang: str, source: str) -> dict:
    """This model on a public set as CLIP_benchmark evaluates it, beside the numbers published for that set."""
    built = COMPARABLE_SETS[source]
    if built.first_caption_only:
        firsts: dict[str, CaptionRecord] = {}
        for record in records:
            firsts.setdefault(record.image_id, record)
        records = list(firsts.values())
    prepared = prepare_data(records, model, eval_lang=lang, progress=False, splits=(records[0].split,))
    ours = evaluate_table(model, prepared, prepared.splits[records[0].split], protocol="clip-benchmark")
    return {
        "protocol": "clip-benchmark",
        "set_as": built.description,
        "this_model": ours,
        "published": published_results(source, lang),
    }


def evaluate_run(
    run: Path, langs: list[str], data: str = "emoji-cldr", split: str = "test", protocol: str = "strict"
) -> dict:
    """Every language, for the run's model and (when the run holds one) its untouched base."""
    models = {"adapted": load(run)}
    if (run / REFERENCE_DIR).exists():
        models["base"] = load(run / REFERENCE_DIR)
    results: dict = {
        "run": str(run),
        "data": data,
        "split": split,
        "protocol": protocol,
        "protocol_description": PROTOCOL.format(ties=PROTOCOLS[protocol]),
        "protocols": dict(PROTOCOLS),
        "languages": {},
    }
    bar = tqdm(total=len(langs) * len(models), desc="evaluating", unit="model-language", file=sys.stderr)
    for lang in langs:
        entry = {}
        for name, model in models.items():
            bar.set_postfix(lang=lang, model=name)
            entry[name] = evaluate_language(model, lang, data, split, protocol)
            bar.update(1)
        if "base" in entry:
            entry["change"] = {
                k: entry["adapted"]["retrieval"][k] - entry["base"]["retrieval"][k]
                for k in entry["adapted"]["retrieval"]
                if "_R@" in k or k == "mean_recall"
            }
        results["languages"][lang] = entry
        tqdm.write(
            f"  {lang}: text->image R@1 ({protocol}) "
            + ", ".join(f"{name} {entry[name]['retrieval']['text_to_image_R@1']:.1f}" for name in models),
            file=sys.stderr,
        )
    bar.close()
    return results
