"""``mlilt eval`` and ``mlilt study`` end to end on tiny real towers and a tiny real picture set."""

from __future__ import annotations

import json

import pytest

from mlilt.cli.main import build_parser, main
from mlilt.tuning.registry import method_names

from helpers import adapt_args, tiny_recipe


def test_eval_writes_report_with_base_and_change(tiny_assets, shapes_dataset, tmp_path):
    run = tmp_path / "run"
    recipe = str(tiny_recipe(tmp_path))
    assert main(adapt_args(tiny_assets, shapes_dataset, run, "--epochs", "1", "--config", recipe)) == 0
    assert main(["eval", str(run), "--lang", "en", "--data", str(shapes_dataset)]) == 0
    report = json.loads((run / "report.json").read_text())
    entry = report["languages"]["en"]
    assert set(entry) >= {"adapted", "base", "change"}
    r = entry["adapted"]["retrieval"]
    assert (
        entry["change"]["text_to_image_R@1"]
        == r["text_to_image_R@1"] - entry["base"]["retrieval"]["text_to_image_R@1"]
    )
    assert report["protocol"] == "strict" and "ties count against the model" in report["protocol_description"]
    assert set(entry["adapted"]["retrieval_by_protocol"]) == {"strict", "clip-benchmark"}
    for name in ("report.md", "recall_per_language.png", "training_curves.png", "examples.png"):
        assert (run / name).stat().st_size > 0, name
    md = (run / "report.md").read_text()
    assert "| en | adapted |" in md and "| en | change |" in md


@pytest.mark.integration
def test_tiny_study_end_to_end(tiny_assets, shapes_dataset, tmp_path, capsys):
    out = tmp_path / "study"
    args = [
        "study",
        "--lang",
        "en",
        "--out",
        str(out),
        "--data",
        str(shapes_dataset),
        "--text",
        tiny_assets["text"],
        "--vision",
        tiny_assets["vision"],
        "--vision-weights",
        tiny_assets["vision_weights"],
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--config",
        str(tiny_recipe(tmp_path)),
        "--methods",
        "frozen,layernorm,ia3,adapters,full",
        "--fractions",
        "0.5",
        "--transfer-from",
        "",
    ]
    assert main(args) == 0
    study = json.loads((out / "study.json").read_text())
    methods = {r["method"]: r for r in study["methods"]}
    assert list(methods) == ["frozen", "layernorm", "ia3", "adapters", "full"]
    assert methods["frozen"]["trainable_percent"] < methods["layernorm"]["trainable_percent"]
    assert methods["frozen"]["trainable_percent"] < methods["ia3"]["trainable_percent"]
    assert methods["ia3"]["trainable_percent"] < methods["adapters"]["trainable_percent"]
    assert methods["layernorm"]["trainable_percent"] < methods["adapters"]["trainable_percent"]
    assert methods["adapters"]["trainable_percent"] < methods["full"]["trainable_percent"]
    full_r1 = methods["full"]["text_to_image_R@1"]
    assert methods["full"]["share_of_full_R@1"] == (100.0 if full_r1 > 0 else None)
    assert all(r["peak_rss_mb"] > 0 and r["train_seconds"] >= 0 for r in study["methods"])
    curve = study["learning_curve"]
    assert [c["fraction"] for c in curve] == [0.5, 1.0] and curve[0]["captions"] < curve[1]["captions"]
    assert (out / "recall_vs_trainable.png").exists() and (out / "learning_curve.png").exists()
    assert "| adapters |" in capsys.readouterr().out


def test_the_study_compares_every_registered_text_method_by_default():
    args = build_parser(["study"]).parse_args(["study", "--lang", "sw"])
    assert args.methods.split(",") == method_names("text") and "ia3" in args.methods.split(",")
