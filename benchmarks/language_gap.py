"""How much of a language's recall is the text tower's knowledge of that language?

The same pictures (Emoji-CLDR's fixed split), the same frozen towers and the same heads-only recipe
(the ``frozen`` reference of ``mlilt adapt``: heads and temperature trained for the recipe's whole
epoch budget) — only the caption language changes. Differences between languages are then the text
tower's: how well it already tells apart the names of that language. Two tables:

- ``own``: heads trained on language L's train captions, tested on L's test names;
- ``cross``: heads trained on SOURCE's captions (English by default), tested on L's test
  names: how much of what the heads learn carries across languages through the frozen tower.

Mean ± std over seeds of test text->image R@1 / R@10, printed and written to a JSON file.

    python benchmarks/language_gap.py                       # sw, en, yo, am, zu, ha; 3 seeds
    python benchmarks/language_gap.py --langs sw,en --seeds 0
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import sys
import tempfile
import time
from pathlib import Path

import torch

from mlilt.adapt import epoch_budget
from mlilt.config import load_run_config
from mlilt.data.emoji_cldr import load_emoji_cldr
from mlilt.data.prepare import PreparedData
from mlilt.evaluation.retrieval import evaluate_table
from mlilt.model import build_model, prepare_data
from mlilt.training.heads import heads_only, train_heads

from _common import machine_meta, mean_std, warn_if_busy, write_json

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("text_to_image_R@1", "text_to_image_R@10")


def mean_pm(values: list[float]) -> str:
    return "{:5.1f} ± {:3.1f}".format(*mean_std(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", default="sw,en,yo,am,zu,ha", help="comma-separated caption languages")
    parser.add_argument("--source", default="en", help="language whose heads are also tested on every other one")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--config", default="default", help="recipe name or YAML path (its budget and lrs)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "language_gap.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = warn_if_busy()
    langs, seeds = args.langs.split(","), [int(s) for s in args.seeds.split(",")]
    cfg = load_run_config(args.config, {"model.text.method": "frozen"})
    budget = epoch_budget(cfg)
    model = build_model(cfg.model, seed=0)
    data: dict[str, PreparedData] = {}
    for lang in dict.fromkeys([*langs, args.source]):
        data[lang] = prepare_data(load_emoji_cldr(lang), model, eval_lang=lang, progress=False)
    print(f"heads only, {budget} epochs; pictures and split identical for every language", file=sys.stderr)
    results: dict[str, dict[str, list[dict]]] = {"own": {}, "cross": {}}  # kind -> language -> test metrics
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for lang in dict.fromkeys([args.source, *langs]):
            for seed in seeds:
                heads = heads_only(model, seed)
                recipe = dataclasses.replace(cfg.train, seed=seed)  # the seed also orders the batches
                with contextlib.redirect_stderr(io.StringIO()):  # no per-epoch lines
                    train_heads(heads, data[lang], recipe, budget, Path(tmp) / f"{lang}-{seed}", progress=False)
                if lang in langs:
                    results["own"].setdefault(lang, []).append(
                        evaluate_table(heads, data[lang], data[lang].splits["test"])
                    )
                if lang == args.source:
                    for target in langs:
                        test = evaluate_table(heads, data[target], data[target].splits["test"])
                        results["cross"].setdefault(target, []).append(test)
                print(f"  {lang} seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    print(f"\nEmoji-CLDR test names, text->image R@1 / R@10, mean ± std over seeds {seeds}")
    columns = [f"{kind} {m.split('_')[-1]}" for kind in ("own", f"{args.source} heads") for m in METRICS]
    print(f"{'lang':6s} {'train captions':>14s}  " + "  ".join(f"{c:>14s}" for c in columns))
    summary = {}
    for lang in langs:
        row = {f"{kind} {m}": [r[m] for r in results[kind][lang]] for kind in ("own", "cross") for m in METRICS}
        summary[lang] = {
            "train_captions": len(data[lang].splits["train"]),
            "test_names": len(data[lang].splits["test"]),
        }
        summary[lang] |= row
        cells = [mean_pm(row[f"{kind} {m}"]) for kind in ("own", "cross") for m in METRICS]
        print(f"{lang:6s} {summary[lang]['train_captions']:14,d}  " + "  ".join(f"{c:>14s}" for c in cells))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"budget_epochs": budget, "recipe": args.config, "seeds": seeds, "source": args.source}
    payload |= {"languages": summary, "machine": machine_meta(load_before)}
    write_json(args.out, payload)
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
