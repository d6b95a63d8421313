"""``mlilt adapt`` end to end on tiny real towers: run folder, resume after SIGKILL, 2 processes, bad data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from mlilt.cli.main import main
from mlilt.config import load_run_config
from mlilt.constants import (
    ADAPTER_WEIGHTS_NAME,
    CHECKPOINT_NAME,
    HEADS_WARMUP_DIR,
    METRICS_NAME,
    RUN_CONFIG_NAME,
    STEP_METRICS_NAME,
    SUMMARY_NAME,
)
from mlilt.run_folder import resumed_config

from helpers import adapt_args, tiny_recipe, tiny_text_model, tiny_tokenizer

ROOT = Path(__file__).resolve().parent.parent


def test_tiny_run_writes_a_complete_run_folder(tiny_assets, shapes_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    recipe = str(tiny_recipe(tmp_path, head_warmup_epochs=3))
    assert main(adapt_args(tiny_assets, shapes_dataset, out, "--epochs", "2", "--config", recipe)) == 0
    for name in (ADAPTER_WEIGHTS_NAME, RUN_CONFIG_NAME, METRICS_NAME, STEP_METRICS_NAME, SUMMARY_NAME):
        assert (out / name).exists(), name
    metrics = json.loads((out / METRICS_NAME).read_text())
    for key in ("text_to_image_R@1", "text_to_image_R@10", "image_to_text_R@5", "mean_recall"):
        assert 0.0 <= metrics["test"][key] <= 100.0
        assert key in metrics["frozen_reference"]["test"]
    assert metrics["method"] == "adapters" and len(metrics["history"]) == 2
    # the reference gets the method's whole budget; the method started from the warm-up's heads
    assert metrics["frozen_reference"]["epochs"] == 2 + 3 and metrics["heads_warmup"]["epochs"] == 3
    assert len((out / HEADS_WARMUP_DIR / STEP_METRICS_NAME).read_text().splitlines()) > 0
    assert [h["seconds"] for h in metrics["history"]] == sorted(h["seconds"] for h in metrics["history"])
    steps = [json.loads(line) for line in (out / STEP_METRICS_NAME).read_text().splitlines()]
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    assert all(s["loss"] > 0 and s["pairs_per_s"] > 0 for s in steps)
    printed = capsys.readouterr().out
    assert "frozen (5 ep)" in printed and "gain over frozen" in printed


def test_unknown_language_lists_close_matches(capsys):
    assert main(["adapt", "--lang", "swahili"]) == 2
    err = capsys.readouterr().err
    assert "sw" in err and "Adding a language" in err


def test_bad_records_are_counted_reported_and_stop_the_run(tiny_assets, shapes_dataset, tmp_path, capsys):
    lines = [json.loads(line) for line in shapes_dataset.read_text().splitlines()]
    for line in lines:  # absolute paths; the ids stay the names, so the hash split does not follow the temp folder
        line["image_id"], line["image"] = line["image"], str(shapes_dataset.parent / line["image"])
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a picture")
    bad = [
        {"image": str(tmp_path / "missing.png"), "caption": "lost"},
        {"image": str(tmp_path / "corrupt.png"), "caption": "broken"},
        {"image": lines[0]["image"], "caption": "   "},
        {"image": lines[0]["image"], "caption": "x" * 5000},
        dict(lines[0]),
    ]
    data = tmp_path / "captions.jsonl"
    data.write_text("".join(json.dumps(x) + "\n" for x in lines + bad))
    recipe = str(tiny_recipe(tmp_path))
    assert main(adapt_args(tiny_assets, data, tmp_path / "run1", "--epochs", "1", "--config", recipe)) == 2
    err = capsys.readouterr().err
    for kind in ("missing_image", "unreadable_image", "empty_caption", "overlong_caption", "duplicate_pair"):
        assert kind in err
    assert "--max-bad-fraction" in err
    out = tmp_path / "run2"
    args = adapt_args(
        tiny_assets, data, out, "--epochs", "1", "--config", recipe, "--max-bad-fraction", "0.2", "--no-reference"
    )
    assert main(args) == 0
    report = json.loads((out / METRICS_NAME).read_text())["data"]
    assert report["total"] == len(lines) + 5 and report["kept"] == len(lines)
    assert report["bad"] == {
        "missing_image": 1,
        "unreadable_image": 1,
        "empty_caption": 1,
        "overlong_caption": 1,
        "duplicate_pair": 1,
    }


def _run_cli(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mlilt.cli", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _checkpoint_step(path: Path) -> int:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return json.loads(handle.metadata()["state"])["step"]
    except Exception:  # not written yet
        return -1


@pytest.mark.integration
def test_resume_after_sigkill_ends_where_an_uninterrupted_run_ends(tiny_assets, shapes_dataset, tmp_path):
    env = {**os.environ, "MLILT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    recipe = str(tiny_recipe(tmp_path, checkpoint_every=3))
    common = ["--epochs", "12", "--config", recipe, "--no-reference"]
    straight = _run_cli(adapt_args(tiny_assets, shapes_dataset, tmp_path / "straight", *common), env)
    assert straight.wait(timeout=300) == 0, straight.stderr.read()

    killed_out = tmp_path / "killed"
    victim = _run_cli(adapt_args(tiny_assets, shapes_dataset, killed_out, *common), env)
    deadline = time.time() + 240
    while _checkpoint_step(killed_out / CHECKPOINT_NAME) < 9 and time.time() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_out / METRICS_NAME).exists(), "the run finished before it could be killed"

    resumed = _run_cli(adapt_args(tiny_assets, shapes_dataset, killed_out, *common, "--resume"), env)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a, b = (
        load_file(str(tmp_path / "straight" / ADAPTER_WEIGHTS_NAME)),
        load_file(str(killed_out / ADAPTER_WEIGHTS_NAME)),
    )
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(x)["step"] for x in (killed_out / STEP_METRICS_NAME).read_text().splitlines()]
    assert log == sorted(set(log)) and log[-1] == _checkpoint_step(killed_out / CHECKPOINT_NAME)


@pytest.fixture(scope="module")
def dropout_free_text(tmp_path_factory):
    """A tiny text tower without dropout, so 1 and 2 processes compute the same thing."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-nodrop")
    tokenizer = tiny_tokenizer()
    model = tiny_text_model("xlm-roberta", len(tokenizer))
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.integration
def test_two_processes_match_one(tiny_assets, shapes_dataset, tmp_path, dropout_free_text):
    """torchrun with gloo on CPU: each process takes half of every batch; gathered negatives make it equal."""
    assets = {**tiny_assets, "text": dropout_free_text}
    env = {**os.environ, "MLILT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    common = ["--epochs", "3", "--config", str(tiny_recipe(tmp_path)), "--no-reference"]
    single = _run_cli(adapt_args(assets, shapes_dataset, tmp_path / "one", *common), env)
    assert single.wait(timeout=300) == 0, single.stderr.read()
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "mlilt.cli",
    ]
    double = subprocess.run(
        [*torchrun, *adapt_args(assets, shapes_dataset, tmp_path / "two", *common)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    a, b = (
        load_file(str(tmp_path / "one" / ADAPTER_WEIGHTS_NAME)),
        load_file(str(tmp_path / "two" / ADAPTER_WEIGHTS_NAME)),
    )
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    assert not torch.equal(a["logit_scale"], torch.tensor(1 / 0.07).log())  # it did train


def test_human_and_translated_captions_mix_with_their_share_reported(tiny_assets, shapes_dataset, tmp_path, capsys):
    lines = [json.loads(line) for line in shapes_dataset.read_text().splitlines()]
    translated = [
        {
            **line,
            "image": str(shapes_dataset.parent / line["image"]),
            "caption": "tr " + line["caption"],
            "source": "machine-translated:tiny-marian",
            "primary": False,
        }
        for line in lines[:12]
    ]
    extra = tmp_path / "translated.jsonl"
    extra.write_text("".join(json.dumps(x) + "\n" for x in translated))
    out = tmp_path / "run"
    args = adapt_args(
        tiny_assets,
        shapes_dataset,
        out,
        "--epochs",
        "1",
        "--config",
        str(tiny_recipe(tmp_path)),
        "--extra-data",
        str(extra),
        "--no-reference",
    )
    assert main(args) == 0
    sources = json.loads((out / METRICS_NAME).read_text())["data"]["sources"]
    assert set(sources) == {"human", "machine-translated:tiny-marian"}
    assert 0 < sources["machine-translated:tiny-marian"] < sources["human"]
    assert "machine-translated:tiny-marian" in capsys.readouterr().err


def test_resume_uses_the_runs_own_settings_and_refuses_contradicting_flags(tiny_assets, shapes_dataset, tmp_path):
    out = tmp_path / "run"
    recipe = str(tiny_recipe(tmp_path))
    assert (
        main(adapt_args(tiny_assets, shapes_dataset, out, "--epochs", "2", "--config", recipe, "--no-reference")) == 0
    )
    plain = load_run_config("default", {"data.lang": "en"})  # what a bare `--resume` would build
    saved = resumed_config(out, plain, ["data.lang"])
    assert saved.train.epochs == 2 and saved.model.embed_dim == 16 and saved.data.source == str(shapes_dataset)
    with pytest.raises(ValueError, match="train.epochs"):
        resumed_config(out, load_run_config("default", {"data.lang": "en", "train.epochs": 5}), ["train.epochs"])


def test_max_steps_stops_the_method_and_evaluates_where_it_stopped(tiny_assets, shapes_dataset, tmp_path):
    out = tmp_path / "run"
    recipe = str(tiny_recipe(tmp_path, head_warmup_epochs=2))
    args = adapt_args(tiny_assets, shapes_dataset, out, "--epochs", "5", "--max-steps", "3", "--config", recipe)
    assert main(args) == 0
    metrics = json.loads((out / METRICS_NAME).read_text())
    assert [h["step"] for h in metrics["history"]] == [3]  # evaluated (and saved) at the last step
    assert len((out / STEP_METRICS_NAME).read_text().splitlines()) == 3
    assert metrics["heads_warmup"]["epochs"] == 2  # the warm-up keeps its epochs
    assert (out / ADAPTER_WEIGHTS_NAME).exists()
