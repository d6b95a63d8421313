"""Reports people read: ``report.json`` (feeds the model card and the demo), ``report.md`` and PNG charts.

Charts: recall per language (adapted vs base), training curves (loss per step, validation recall per
epoch), and a grid of example queries with their top-5 pictures (green frame = the right one).
"""

from __future__ import annotations

import json
from pathlib import Path

from mlilt.constants import METRICS_NAME, REPORT_MD_NAME, REPORT_NAME, STEP_METRICS_NAME
from mlilt.data.images import open_rgb
from mlilt.evaluation.plotting import plt

RECALL_CHART, CURVES_CHART, EXAMPLES_CHART = "recall_per_language.png", "training_curves.png", "examples.png"
RETRIEVAL_COLUMNS = [
    (f"{d}_R@{k}", f"{'t→i' if d == 'text_to_image' else 'i→t'} R@{k}")
    for d in ("text_to_image", "image_to_text")
    for k in (1, 5, 10)
]


def write_report(results: dict, out: Path, run: Path | None = None) -> list[Path]:
    """Write report.json, report.md and the charts into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / REPORT_NAME]
    written[0].write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    charts = [recall_chart(results, out / RECALL_CHART)]
    if run is not None and (run / STEP_METRICS_NAME).exists():
        charts.append(curves_chart(run, out / CURVES_CHART))
    first = next(iter(results["languages"].values()), None)
    if first and first["adapted"].get("examples"):
        lang = next(iter(results["languages"]))
        charts.append(examples_chart(first["adapted"]["examples"], lang, out / EXAMPLES_CHART))
    (out / REPORT_MD_NAME).write_text(markdown(results, [c.name for c in charts]), encoding="utf-8")
    return written + charts + [out / REPORT_MD_NAME]


def markdown(results: dict, charts: list[str]) -> str:
    lines = [
        f"# Evaluation of `{results['run']}`",
        "",
        f"Data: {results['data']}, split `{results['split']}`. Protocol: **{results['protocol']}** (ties: "
        f"{results['protocols'][results['protocol']]}); report.json holds every protocol's numbers.",
        "",
        "| language | model | " + " | ".join(c for _, c in RETRIEVAL_COLUMNS) + " | mean | zero-shot top-1 |",
        "|---|---|" + "---:|" * (len(RETRIEVAL_COLUMNS) + 2),
    ]
    for lang, entry in results["languages"].items():
        for name in ("adapted", "base"):
            if name not in entry:
                continue
            r, zs = entry[name]["retrieval"], entry[name].get("zero_shot")
            cells = [f"{r[k]:.1f}" for k, _ in RETRIEVAL_COLUMNS] + [f"{r['mean_recall']:.1f}"]
            cells.append(f"{zs['top1']:.1f} (chance {zs['chance_top1']:.1f})" if zs else "–")
            lines.append(f"| {lang} | {name} | " + " | ".join(cells) + " |")
        if "change" in entry:
            c = entry["change"]
            lines.append(
                f"| {lang} | change | "
                + " | ".join(f"{c[k]:+.1f}" for k, _ in RETRIEVAL_COLUMNS)
                + f" | {c['mean_recall']:+.1f} | |"
            )
    lines += [
        "",
        "**Base** is the run's `reference-frozen/` model: the same towers untouched, heads trained on the "
        "same data and budget. **Change** = adapted − base: gains in the trained language, knowledge kept "
        "(or lost) in the others.",
        "",
        "## Protocol",
        "",
        results["protocol_description"],
        "",
    ]
    lines += _comparable(results)
    lines += [f"![{c}]({c})" for c in charts]
    return "\n".join(lines) + "\n"


def _comparable(results: dict) -> list[str]:
    """For public sets: this model as CLIP_benchmark evaluates it, beside the published numbers."""
    lines = []
    for lang, entry in results["languages"].items():
        found = entry.get("adapted", {}).get("comparable")
        if not found:
            continue
        lines += [
            f"## Comparable with published numbers ({lang})",
            "",
            f"{found['set_as']}; protocol: {found['protocol']}. Published: {found['published']['source']}.",
            "",
            "| model | " + " | ".join(c for _, c in RETRIEVAL_COLUMNS) + " |",
            "|---|" + "---:|" * len(RETRIEVAL_COLUMNS),
        ]
        rows = [("this adapter", found["this_model"])]
        rows += [(f"{r['model']} ({r['pretrained']})", r) for r in found["published"]["rows"]]
        for name, r in rows:
            lines.append(f"| {name} | " + " | ".join(_cell(r.get(k)) for k, _ in RETRIEVAL_COLUMNS) + " |")
        lines.append("")
    return lines


def _cell(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def recall_chart(results: dict, path: Path) -> Path:
    langs = list(results["languages"])
    models = [m for m in ("adapted", "base") if any(m in e for e in results["languages"].values())]
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.2 * len(langs), 3.6), sharey=True)
    width = 0.8 / len(models)
    for ax, k in zip(axes, (1, 10)):
        for i, model in enumerate(models):
            values = [
                results["languages"][lang].get(model, {}).get("retrieval", {}).get(f"text_to_image_R@{k}", 0)
                for lang in langs
            ]
            bars = ax.bar([x + i * width for x in range(len(langs))], values, width, label=model)
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ax.set_xticks([x + width * (len(models) - 1) / 2 for x in range(len(langs))], langs)
        ax.set_title(f"text → image R@{k}")
    axes[0].set_ylabel("%")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves_chart(run: Path, path: Path) -> Path:
    steps = [json.loads(line) for line in (run / STEP_METRICS_NAME).read_text().splitlines() if line.strip()]
    history = json.loads((run / METRICS_NAME).read_text()).get("history", []) if (run / METRICS_NAME).exists() else []
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    left.plot([s["step"] for s in steps], [s["loss"] for s in steps], lw=0.8)
    left.set_xlabel("step")
    left.set_title("training loss")
    if history:
        right.plot(
            [h["epoch"] + 1 for h in history], [h["val_text_to_image_R@1"] for h in history], "o-", label="t→i R@1"
        )
        right.plot(
            [h["epoch"] + 1 for h in history], [h["val_text_to_image_R@10"] for h in history], "s-", label="t→i R@10"
        )
        right.legend(fontsize=8)
    right.set_xlabel("epoch")
    right.set_title("validation recall (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def examples_chart(examples: list[dict], lang: str, path: Path) -> Path:
    k = max(len(e["top"]) for e in examples)
    fig, axes = plt.subplots(len(examples), k + 1, figsize=(1.3 * (k + 1), 1.45 * len(examples)), squeeze=False)
    for row, example in zip(axes, examples):
        row[0].imshow(open_rgb(example["target"]))
        row[0].set_title(f"“{example['query'][:18]}”", fontsize=8)
        for ax, picture, hit in zip(row[1:], example["top"], example["hits"]):
            ax.imshow(open_rgb(picture))
            for spine in ax.spines.values():
                spine.set_edgecolor("#2a2" if hit else "#ddd")
                spine.set_linewidth(3 if hit else 1)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0][0].set_ylabel(f"query ({lang})\nand its picture", fontsize=7)
    for i in range(1, k + 1):
        axes[0][i].set_xlabel(f"#{i}", fontsize=7)
        axes[0][i].xaxis.set_label_position("top")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
