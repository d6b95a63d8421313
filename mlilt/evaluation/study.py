"""``mlilt study --lang sw``: the paper's comparison on one language, in one command.

Runs, on the same data, recipe and budget:
- every tuning method of the text tower (``frozen``, ``layernorm``, ``bitfit``, ``adapters``, ``lora``, ``full``);
- cross-lingual transfer: ``adapters`` trained on English captions, evaluated on the target language;
- a scarce-data learning curve: ``adapters`` on a share of the target-language training captions.

Each run is its own ``mlilt adapt`` process, so wall time and peak memory are measured per run.
The study folder gets ``study.json``, ``study.md`` and charts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlilt.constants import CHECKPOINT_NAME, METRICS_NAME, STUDY_NAME
from mlilt.errors import MliltError
from mlilt.evaluation.languages import evaluate_language
from mlilt.evaluation.plotting import plt
from mlilt.hub.loading import load


class StudyRunError(MliltError, RuntimeError):
    """One run of the study failed; the message holds the end of its output (the study continues when rerun)."""


def adapt_command(lang: str, method: str, out: Path, *flags: str) -> list[str]:
    """The command line of one quiet ``mlilt adapt`` run in a fresh process (also used by the benchmarks)."""
    return [
        sys.executable,
        "-m",
        "mlilt.cli",
        "adapt",
        "--lang",
        lang,
        "--method",
        method,
        "--out",
        str(out),
        "--quiet",
        *flags,
    ]


def _adapt(out: Path, lang: str, method: str, passthrough: list[str], extra: list[str]) -> dict:
    """One ``mlilt adapt`` run in its own process (resumed if a previous study was interrupted)."""
    if (out / METRICS_NAME).exists():
        return json.loads((out / METRICS_NAME).read_text())
    resume = ["--resume"] if (out / CHECKPOINT_NAME).exists() else []
    command = adapt_command(lang, method, out, "--no-reference", *passthrough, *extra, *resume)
    print(f"study: {out.name} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise StudyRunError(f"study run {out.name} failed:\n{done.stderr[-3000:]}")
    return json.loads((out / METRICS_NAME).read_text())


def _row(name: str, metrics: dict, test: dict | None = None) -> dict:
    test = test or metrics["test"]
    return {
        "name": name,
        "method": metrics["method"],
        "trainable_percent": metrics["parameters"]["total"]["percent"],
        "trainable": metrics["parameters"]["total"]["trainable"],
        **test,
        "train_seconds": metrics["train_seconds"],
        "peak_rss_mb": metrics.get("peak_rss_mb"),
    }


def run_study(
    lang: str,
    out: Path,
    methods: tuple[str, ...],
    fractions: tuple[float, ...],
    transfer_from: str | None,
    passthrough: list[str],
    data: str = "emoji-cldr",
) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    rows = [_row(m, _adapt(out / m, lang, m, passthrough, [])) for m in methods]
    full = next((r for r in rows if r["method"] == "full"), None)
    for row in rows:
        full_r1 = full["text_to_image_R@1"] if full else 0.0
        row["share_of_full_R@1"] = 100 * row["text_to_image_R@1"] / full_r1 if full_r1 > 0 else None
    study = {"lang": lang, "methods": rows, "transfer": None, "learning_curve": []}
    if transfer_from:
        metrics = _adapt(out / f"transfer-{transfer_from}", transfer_from, "adapters", passthrough, [])
        on_target = evaluate_language(load(out / f"transfer-{transfer_from}"), lang, data)["retrieval"]
        study["transfer"] = _row(f"adapters trained on {transfer_from}, tested on {lang}", metrics, on_target)
    adapters = next((r for r in rows if r["method"] == "adapters"), None)
    if adapters and fractions:
        total = json.loads((out / "adapters" / METRICS_NAME).read_text())["splits"]["train"]
        for fraction in fractions:
            metrics = _adapt(
                out / f"adapters-{int(fraction * 100)}pct",
                lang,
                "adapters",
                passthrough,
                ["--max-captions", str(max(1, int(fraction * total)))],
            )
            study["learning_curve"].append(
                {
                    **_row(f"{fraction:.0%} captions", metrics),
                    "fraction": fraction,
                    "captions": metrics["splits"]["train"],
                }
            )
        study["learning_curve"].append({**adapters, "fraction": 1.0, "captions": total})
    (out / STUDY_NAME).write_text(json.dumps(study, indent=2) + "\n", encoding="utf-8")
    charts = [_tradeoff_chart(study, out / "recall_vs_trainable.png")]
    if len(study["learning_curve"]) > 1:
        charts.append(_curve_chart(study, out / "learning_curve.png"))
    (out / "study.md").write_text(study_markdown(study, [c.name for c in charts]), encoding="utf-8")
    return study


def study_markdown(study: dict, charts: list[str]) -> str:
    head = (
        "| run | trainable | t→i R@1 | t→i R@10 | i→t R@1 | i→t R@10 | mean | R@1 as % of full | train s | "
        "peak RSS MB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )

    def line(r):
        share = f"{r['share_of_full_R@1']:.0f}%" if r.get("share_of_full_R@1") is not None else "–"
        return (
            f"| {r['name']} | {r['trainable_percent']:.2f}% | {r['text_to_image_R@1']:.1f} | "
            f"{r['text_to_image_R@10']:.1f} | {r['image_to_text_R@1']:.1f} | {r['image_to_text_R@10']:.1f} | "
            f"{r['mean_recall']:.1f} | {share} | {r['train_seconds']:.0f} | {r['peak_rss_mb'] or 0:.0f} |"
        )

    parts = [f"# Study: {study['lang']}", "", "## Methods (same data, recipe and budget)", "", head]
    parts += [line(r) for r in study["methods"]]
    if study["transfer"]:
        parts += ["", "## Cross-lingual transfer", "", head, line(study["transfer"])]
    if study["learning_curve"]:
        parts += ["", "## Scarce data (adapters)", "", head] + [line(r) for r in study["learning_curve"]]
    parts += ["", *[f"![{c}]({c})" for c in charts], ""]
    return "\n".join(parts)


def _tradeoff_chart(study: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for r in study["methods"]:
        ax.scatter(max(r["trainable_percent"], 1e-3), r["text_to_image_R@1"])
        ax.annotate(
            r["method"],
            (max(r["trainable_percent"], 1e-3), r["text_to_image_R@1"]),
            fontsize=8,
            xytext=(4, 3),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of model, log)")
    ax.set_ylabel("test text → image R@1 (%)")
    ax.set_title(f"Recall against trainable parameters ({study['lang']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _curve_chart(study: dict, path: Path) -> Path:
    curve = sorted(study["learning_curve"], key=lambda r: r["fraction"])
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot([r["captions"] for r in curve], [r["text_to_image_R@1"] for r in curve], "o-", label="R@1")
    ax.plot([r["captions"] for r in curve], [r["text_to_image_R@10"] for r in curve], "s-", label="R@10")
    ax.set_xlabel(f"training captions ({study['lang']})")
    ax.set_ylabel("test text → image (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
