"""``mlilt push`` and loading from the Hub, offline: staged folder, model card metadata, round trip, failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

import mlilt
from mlilt.cli.main import main
from mlilt.constants import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    METRICS_NAME,
    RUN_CONFIG_NAME,
    STAGE_DIR,
    STAGE_MARKER,
)
from mlilt.hub import transport
from mlilt.hub.adapter_files import save_adapter
from mlilt.hub.model_card import AdapterCardData
from mlilt.hub.transport import staged_files

from helpers import TEXTS, draw_picture, trained_model

REPO = "someone/mlilt-sw"
FAKE_TOKEN = "hf_mliltFakeTokenDoNotLeak0123456789"
TEST = {
    "text_to_image_R@1": 41.25,
    "text_to_image_R@5": 70.0,
    "text_to_image_R@10": 81.5,
    "image_to_text_R@1": 38.0,
    "image_to_text_R@5": 66.25,
    "image_to_text_R@10": 79.0,
    "mean_recall": 62.7,
    "text_to_image_median_rank": 2.0,
    "image_to_text_median_rank": 3.0,
    "num_captions": 282.0,
    "num_pictures": 282.0,
}
REFERENCE = {k: v / 2 for k, v in TEST.items()}
UPLOADED = {ADAPTER_WEIGHTS_NAME, ADAPTER_CONFIG_NAME, METRICS_NAME, "report.json", "recall.png", "README.md"}


@pytest.fixture(scope="module")
def trained(tiny_assets, tmp_path_factory):
    """A run folder as ``mlilt adapt`` writes it (plus a report and a chart), and the model it holds."""
    model = trained_model(tiny_assets, method="layernorm")
    run = tmp_path_factory.mktemp("runs") / "sw-layernorm"
    save_adapter(model, run, {"lang": "sw", "data": "emoji-cldr", "recipe": "default"})
    params = json.loads((run / ADAPTER_CONFIG_NAME).read_text())["parameters"]
    metrics = {
        "lang": "sw",
        "method": "layernorm",
        "test": TEST,
        "best_epoch": 3,
        "parameters": params,
        "data": {"total": 4077, "kept": 4077, "bad": {}, "examples": {}},
        "frozen_reference": {"test": REFERENCE, "best_epoch": 2},
    }
    (run / METRICS_NAME).write_text(json.dumps(metrics))
    (run / RUN_CONFIG_NAME).write_text(
        json.dumps({"data": {"source": "emoji-cldr", "lang": "sw"}, "train": {"epochs": 6}})
    )
    (run / "report.json").write_text(json.dumps({"lang": "sw"}))
    (run / "recall.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    for name in ("metrics.jsonl", "summary.txt", "checkpoint.safetensors"):
        (run / name).write_text("x")
    shutil.copytree(run, run.parent / "ref-copy")
    (run.parent / "ref-copy").rename(run / "reference-frozen")
    return run, model


def _run_files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if STAGE_DIR not in p.parts}


def test_dry_run_stages_exactly_the_upload_with_a_valid_card(trained, tmp_path, capsys):
    run, _ = trained
    before = _run_files(run)
    assert main(["push", str(run), "--repo", REPO, "--dry-run"]) == 0
    staged = run / STAGE_DIR
    assert set(staged_files(staged)) == UPLOADED == {p.name for p in staged.iterdir()} - {STAGE_MARKER}
    assert _run_files(run) == before  # nothing else written
    assert "dry run" in capsys.readouterr().out

    card = ModelCard.load(staged / "README.md")  # huggingface_hub's own parser
    data = card.data
    assert data.language == ["sw"] and data.library_name == "mlilt" and data.license == "apache-2.0"
    assert data.pipeline_tag == "zero-shot-image-classification" and "mlilt" in data.tags
    results = {r.metric_type: r for r in data.eval_results}
    assert len(results) == 6 and results["text_to_image_R@1"].metric_value == 41.25
    i2t = results["image_to_text_R@10"]
    assert i2t.dataset_config == "sw" and i2t.dataset_split == "test" and i2t.metric_value == 79.0
    meta = metadata_load(staged / "README.md")
    name, parsed = model_index_to_eval_results(meta["model-index"])
    assert name == "mlilt-sw" and len(parsed) == 6
    text = card.text
    assert "frozen reference" in text and "41.2" in text and "20.6" in text  # both rows of the table
    assert 'mlilt.load("someone/mlilt-sw")' in text and "layernorm" in text and "native speakers" in text
    assert str(run.parent) not in card.content  # no local paths leak into the card


def test_stage_elsewhere_and_replace_an_earlier_staging(trained, tmp_path):
    run, _ = trained
    stage = tmp_path / "stage"
    assert main(["push", str(run), "--repo", REPO, "--dry-run", "--stage", str(stage)]) == 0
    (stage / "metrics.json").write_text("{}")  # an earlier staging's file, changed: staged again
    assert main(["push", str(run), "--repo", REPO, "--dry-run", "--stage", str(stage)]) == 0
    assert set(staged_files(stage)) == UPLOADED == {p.name for p in stage.iterdir()} - {STAGE_MARKER}
    assert json.loads((stage / "metrics.json").read_text())["lang"] == "sw"
    (stage / "notes.txt").write_text("mine")  # a file mlilt did not stage: never deleted
    assert main(["push", str(run), "--repo", REPO, "--dry-run", "--stage", str(stage)]) == 2
    assert (stage / "notes.txt").read_text() == "mine"
    other = tmp_path / "not-a-stage"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["push", str(run), "--repo", REPO, "--dry-run", "--stage", str(other)]) == 2
    assert (other / "keep.txt").exists()


def test_card_metadata_for_hub_towers_and_machine_translated_captions():
    card = AdapterCardData(
        repo_id="me/mlilt-yo",
        lang="yo",
        method="lora",
        text_tower="offline:multilingual-e5-small",
        vision_tower="deit_base_patch16_224",
        data_source="me/yoruba-captions",
        caption_sources={"machine-translated:facebook/nllb-200-distilled-600M": 30, "human": 10},
        test=TEST,
        trainable=10,
        total=1000,
    )
    data = card.card_data()
    assert data.base_model == ["intfloat/multilingual-e5-small", "timm/deit_base_patch16_224.fb_in1k"]
    assert data.datasets == ["me/yoruba-captions"]
    text = card.render()
    assert "75 % machine-translated with `facebook/nllb-200-distilled-600M`" in text
    assert "machine translations" in text and "sentence-transformers" in text
    assert ModelCard(text).data.base_model == data.base_model


def test_round_trip_through_the_staged_folder_and_the_hub_cache(trained, tmp_path, monkeypatch):
    run, model = trained
    assert main(["push", str(run), "--repo", REPO, "--dry-run", "--stage", str(tmp_path / "stage")]) == 0
    images = [draw_picture("red", "circle")]
    expected_text, expected_images = model.embed_texts(TEXTS), model.embed_images(images)
    assert torch.equal(mlilt.load(tmp_path / "stage").embed_texts(TEXTS), expected_text)

    # The Hub cache layout snapshot_download reads offline: models--user--name/{refs/main, snapshots/<commit>/}.
    cache = tmp_path / "hub-cache"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / "models--someone--mlilt-sw"
    shutil.copytree(tmp_path / "stage", repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)  # "someone/mlilt-sw" is not a local folder here
    loaded = mlilt.load(REPO)
    assert torch.equal(loaded.embed_texts(TEXTS), expected_text)
    assert torch.equal(loaded.embed_images(images), expected_images)
    with pytest.raises(FileNotFoundError, match="could not be fetched"):
        mlilt.load(REPO, revision="no-such-branch")
    with pytest.raises(FileNotFoundError, match="neither a local folder nor a Hub id"):
        mlilt.load("no/such/folder")


def _all_text(*folders: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for f in folders for p in f.rglob("*") if p.is_file())


def test_failed_push_keeps_the_stage_says_how_to_retry_and_never_leaks_the_token(
    trained, tmp_path, monkeypatch, capsys
):
    run, _ = trained
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    stage = tmp_path / "stage"
    args = ["push", str(run), "--repo", REPO, "--stage", str(stage), "--private"]
    assert main(args) == 1  # HF_HUB_OFFLINE=1 (the tests' setting)
    out, err = capsys.readouterr()
    assert "HF_HUB_OFFLINE" in err and f"kept at {stage}" in err
    assert f"Retry with: mlilt push {run} --repo {REPO} --stage {stage} --private" in err
    assert set(staged_files(stage)) == UPLOADED == {p.name for p in stage.iterdir()} - {STAGE_MARKER}

    # Online mode, but the Hub does not answer (nothing listens on the endpoint).
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    assert main(args) == 1
    out2, err2 = capsys.readouterr()
    assert "upload to someone/mlilt-sw failed" in err2 and f"kept at {stage}" in err2
    assert (stage / ADAPTER_WEIGHTS_NAME).exists()
    assert FAKE_TOKEN not in out + err + out2 + err2
    assert FAKE_TOKEN not in _all_text(stage, run)


def test_push_passes_private_revision_and_create_pr(trained, tmp_path, monkeypatch, capsys):
    run, _ = trained
    calls = []

    class FakeApi:
        def __init__(self, **kwargs):
            pass

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def create_branch(self, repo_id, **kwargs):
            calls.append(("create_branch", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs["repo_id"], kwargs))
            return type("Info", (), {"pr_url": "https://huggingface.co/someone/mlilt-sw/discussions/1"})()

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(transport, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    stage = tmp_path / "stage"
    assert (
        main(["push", str(run), "--repo", REPO, "--stage", str(stage), "--private", "--revision", "v2", "--create-pr"])
        == 0
    )
    assert calls[0] == ("create_repo", REPO, {"private": True, "exist_ok": True})
    upload = calls[-1][2]
    assert upload["revision"] == "v2" and upload["create_pr"] is True and upload["folder_path"] == str(stage)
    assert "discussions/1" in capsys.readouterr().out
