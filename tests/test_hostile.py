"""mlilt used as a hostile user would: every way found to get a wrong number, lose a file, serve a secret or get a
traceback (issue 14, items 1-16; item 14, config types, is in ``test_cli.py``). Each test failed before the fix."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from mlilt.cli.main import main
from mlilt.constants import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    CHECKPOINT_NAME,
    HEADS_WARMUP_DIR,
    METRICS_NAME,
    REFERENCE_DIR,
    RUN_LOCK_NAME,
    STEP_METRICS_NAME,
)
from mlilt.data import files
from mlilt.data.files import load_caption_file
from mlilt.data.images import open_rgb
from mlilt.data.records import CaptionRecord
from mlilt.data.validate import validate_records
from mlilt.demo.gallery import folder_gallery
from mlilt.demo.search import load_language
from mlilt.demo.ui import build_demo, launch
from mlilt.demo.uploads import UploadRejected, checked_image_class
from mlilt.errors import AdapterMismatchError, NotFiniteError
from mlilt.evaluation.metrics import retrieval_metrics
from mlilt.features import FeatureStore, image_features, tower_fingerprint
from mlilt.hub.adapter_files import save_adapter
from mlilt.hub.loading import load
from mlilt.towers import offline_e5
from mlilt.towers.vision import VisionTower
from mlilt.training import loop

from helpers import COLOURS, SHAPES, adapt_args, draw_picture, tiny_recipe, trained_model

ROOT = Path(__file__).resolve().parent.parent


def _error(capsys) -> str:
    """The one ``mlilt: error:`` line the command ended with (and no traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("mlilt: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _pictures(folder: Path, n: int = 24) -> list[Path]:
    paths = []
    for i, (colour, shape) in enumerate([(c, s) for c in COLOURS for s in SHAPES][:n]):
        path = folder / f"{colour}-{shape}.png"
        draw_picture(colour, shape).save(path)
        paths.append(path)
    return paths


def _caption_file(folder: Path, rows: list[dict]) -> Path:
    path = folder / "captions.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# 1. A diverged run is stopped and named, never reported as perfect.


def test_01_a_diverged_run_stops_at_the_step_and_says_what_to_do(tiny_assets, shapes_dataset, tmp_path, capsys):
    args = adapt_args(
        tiny_assets,
        shapes_dataset,
        tmp_path / "run",
        "--epochs",
        "2",
        "--head-warmup-epochs",
        "0",
        "--no-reference",
        "--lr",
        "1e4",
        "--config",
        str(tiny_recipe(tmp_path)),
    )
    assert main(args) == 2
    error = _error(capsys)
    assert "training diverged at step" in error and "lower learning rate" in error and "--lr, now 10000" in error
    assert not (tmp_path / "run" / METRICS_NAME).exists()  # nothing reported
    if (tmp_path / "run" / ADAPTER_WEIGHTS_NAME).exists():  # an earlier, finite epoch may have been kept
        assert all(torch.isfinite(t).all() for t in load_file(str(tmp_path / "run" / ADAPTER_WEIGHTS_NAME)).values())


def test_01_with_skip_nonfinite_steps_a_bad_step_is_skipped_and_counted(
    tiny_assets, shapes_dataset, tmp_path, monkeypatch, capsys
):
    class NanOnSecondCall(loop.ContrastiveLoss):
        calls = 0

        def forward(self, *args):
            NanOnSecondCall.calls += 1
            loss = super().forward(*args)
            return loss * float("nan") if NanOnSecondCall.calls == 2 else loss

    monkeypatch.setattr(loop, "ContrastiveLoss", NanOnSecondCall)
    args = adapt_args(
        tiny_assets,
        shapes_dataset,
        tmp_path / "run",
        "--epochs",
        "2",
        "--head-warmup-epochs",
        "0",
        "--no-reference",
        "--skip-nonfinite-steps",
        "--config",
        str(tiny_recipe(tmp_path)),
    )
    assert main(args) == 0
    metrics = json.loads((tmp_path / "run" / METRICS_NAME).read_text())
    assert metrics["skipped_steps"] == 1 and "1 steps skipped" in capsys.readouterr().out
    assert all(torch.isfinite(t).all() for t in load_file(str(tmp_path / "run" / ADAPTER_WEIGHTS_NAME)).values())


def test_01_nan_scores_and_nan_weights_are_refused(tiny_assets, tmp_path):
    with pytest.raises(NotFiniteError, match="25 of 25 similarity scores are NaN"):
        retrieval_metrics(torch.full((5, 5), float("nan")), torch.arange(5))
    model = trained_model(tiny_assets)
    save_adapter(model, tmp_path)
    weights = load_file(str(tmp_path / ADAPTER_WEIGHTS_NAME))
    weights["logit_scale"] = torch.tensor(float("nan"))
    save_file(weights, str(tmp_path / ADAPTER_WEIGHTS_NAME))
    with pytest.raises(AdapterMismatchError, match="logit_scale holds 1 NaN or infinite values"):
        load(tmp_path)


# 2. The cache is verified: a damaged shard or converted model is named, removed and rebuilt, never used.


def _tiny_tower() -> VisionTower:
    torch.manual_seed(0)
    return VisionTower(timm.create_model("test_vit", pretrained=False, num_classes=0).eval(), "test_vit")


@pytest.mark.parametrize("damage", ["overwrite floats", "truncate"])
def test_02_a_damaged_feature_shard_is_named_removed_and_computed_again(tmp_path, capsys, damage):
    tower, paths = _tiny_tower(), [str(p) for p in _pictures(tmp_path, 5)]
    store = FeatureStore(tower, root=tmp_path / "cache")
    fresh, _ = image_features(tower, paths, store=store, progress=False)
    (shard,) = store.folder.glob("shard-*.safetensors")
    data = bytearray(shard.read_bytes())
    if damage == "truncate":
        shard.write_bytes(bytes(data[: len(data) // 2]))
    else:  # the header stays intact: only the float data changes
        data[-64:] = bytes(64)
        shard.write_bytes(bytes(data))
    again, stats = image_features(tower, paths, store=FeatureStore(tower, root=tmp_path / "cache"), progress=False)
    assert f"feature cache: {shard} is damaged" in capsys.readouterr().err
    assert (stats.hits, stats.misses) == (0, 5) and torch.equal(again[:], fresh[:])


@pytest.mark.slow  # converts the 4-bit e5 twice (about 470 MB each)
def test_02_a_damaged_converted_model_is_converted_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLILT_CACHE", str(tmp_path))
    folder = offline_e5.ensure_e5_small()
    weights = folder / "model.safetensors"
    with open(weights, "r+b") as handle:  # a damaged disk block in the middle of the weights
        handle.seek(weights.stat().st_size // 2)
        handle.write(b"\xff" * 4096)
    offline_e5._VERIFIED.clear()  # a new process
    assert offline_e5.ensure_e5_small() == folder
    assert "changed since the conversion: model.safetensors); converting it again" in capsys.readouterr().err
    assert offline_e5._damage(folder) == []


# 3. Two pictures under one image_id are reported, not merged.


def test_03_two_pictures_sharing_an_image_id_are_reported(tmp_path):
    a, b, c = _pictures(tmp_path, 3)
    rows = [
        {"image": str(p), "caption": f"caption {i} of {p.stem}", "image_id": p.stem, "lang": "en"}
        for p in (a, b, c)
        for i in range(3)
    ]
    for row in rows[3:6]:
        row["image_id"] = a.stem  # b's captions claim to be a's picture
    good, report = validate_records(load_caption_file(_caption_file(tmp_path, rows)), max_bad_fraction=0.5)
    assert report.bad == {"image_id_conflict": 3} and len(good) == 6
    assert {r.image for r in good if r.image_id == a.stem} == {str(a)}
    copy = tmp_path / "copy.png"
    shutil.copy(a, copy)  # the same bytes under another path: the same picture, no conflict
    again = validate_records([CaptionRecord(str(a), "x", "a", "train"), CaptionRecord(str(copy), "y", "a", "train")])
    assert again[1].bad == {}


# 4. Transparent pictures on white (configurable), wide greyscale scaled, a size cap.


def test_04_transparent_and_16_bit_pictures_are_read_right(tmp_path):
    icon = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    icon.paste((20, 20, 20, 255), (8, 8, 24, 24))
    icon.save(tmp_path / "icon.png")
    on_white = np.asarray(open_rgb(str(tmp_path / "icon.png")))
    assert (on_white[0, 0] == 255).all() and (on_white[16, 16] == 20).all()  # dark stroke on a light page
    assert (np.asarray(open_rgb(str(tmp_path / "icon.png"), background="black"))[0, 0] == 0).all()
    Image.fromarray(np.full((8, 8), 30000, np.uint16)).save(tmp_path / "deep.png")
    assert np.asarray(open_rgb(str(tmp_path / "deep.png")))[0, 0, 0] == round(30000 / 257)  # not clipped to white
    white, black = _tiny_tower(), _tiny_tower()
    black.background = "black"
    assert tower_fingerprint(white, "plain") != tower_fingerprint(black, "plain")  # cached apart


def test_04_and_16_a_picture_above_the_pixel_cap_is_refused_before_decoding(tmp_path):
    Image.new("L", (7000, 7000)).save(tmp_path / "huge.png")  # 49 megapixels: over the default 40
    draw_picture("red", "circle").save(tmp_path / "small.png")
    records = [CaptionRecord(str(tmp_path / n), "x", n, "train") for n in ("huge.png", "small.png")]
    _, report = validate_records(records, max_bad_fraction=0.5)
    assert report.bad == {"too_many_pixels": 1}
    _, report = validate_records(records, max_bad_fraction=1.0, max_pixels=1000)
    assert report.bad == {"too_many_pixels": 2}


# 5. `push --stage` deletes only what a staging made.


@pytest.fixture
def run_folder(tiny_assets, tmp_path) -> Path:
    run = tmp_path / "runs" / "sw-layernorm"
    save_adapter(
        trained_model(tiny_assets, method="layernorm"), run, {"lang": "sw", "data": str(tmp_path / "d.jsonl")}
    )
    metrics = {
        "lang": "sw",
        "test": {"text_to_image_R@1": 10.0},
        "data": {"examples": {"missing_image": [f"record 3: {tmp_path}/private/photo.png | 'x'"]}},
    }
    (run / METRICS_NAME).write_text(json.dumps(metrics))
    (run / "report.json").write_text(json.dumps({"run": str(run), "top": [f"{run}/examples.png"]}))
    return run


def test_05_push_stage_never_deletes_a_folder_it_did_not_make(run_folder, tmp_path, capsys):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "README.md").write_text("my project")
    (project / "data.csv").write_text("a,b\n")
    assert main(["push", str(run_folder), "--repo", "me/x", "--stage", str(project), "--dry-run"]) == 2
    assert "holds files mlilt did not stage" in _error(capsys)
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "data.csv", "src"]
    assert main(["push", str(run_folder), "--repo", "me/x", "--stage", str(run_folder.parent), "--dry-run"]) == 2
    assert "holds the run folder itself" in _error(capsys)
    assert (run_folder / ADAPTER_WEIGHTS_NAME).exists()


# 6. One run per folder; --out never over someone else's files; language codes checked before they become paths.


def test_06_a_folder_another_run_is_writing_into_is_refused(tiny_assets, shapes_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": sleeper.pid, "host": socket.gethostname(), "started": "earlier"}
        (out / RUN_LOCK_NAME).write_text(json.dumps(lock))
        args = adapt_args(
            tiny_assets, shapes_dataset, out, "--epochs", "1", "--no-reference", "--config", str(tiny_recipe(tmp_path))
        )
        assert main(args) == 2
        assert f"another mlilt run (pid {sleeper.pid}" in _error(capsys)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert main(args) == 0  # the lock of a run that is gone is taken over
    assert not (out / RUN_LOCK_NAME).exists()


def test_06_out_is_never_a_folder_of_other_files_and_lang_never_a_path(tmp_path, capsys):
    package = tmp_path / "mlilt-copy"
    shutil.copytree(ROOT / "mlilt" / "tuning", package)
    before = {p: p.read_bytes() for p in package.rglob("*.py")}
    assert main(["adapt", "--lang", "sw", "--out", str(package)]) == 2
    assert "already holds files a run does not write" in _error(capsys)
    assert {p: p.read_bytes() for p in package.rglob("*.py")} == before
    assert main(["adapt", "--lang", "../../x"]) == 2
    assert "'../../x' is not a language code" in _error(capsys)


@pytest.mark.integration
def test_06_two_runs_started_into_one_folder(tiny_assets, shapes_dataset, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "MLILT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    args = adapt_args(tiny_assets, shapes_dataset, out, "--no-reference", "--config", str(tiny_recipe(tmp_path)))
    command = [sys.executable, "-m", "mlilt.cli"]
    first = subprocess.Popen(
        [*command, *args, "--epochs", "300", "--seed", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while not (out / RUN_LOCK_NAME).exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        second = subprocess.run(
            [*command, *args, "--epochs", "1", "--seed", "2"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert first.poll() is None, "the first run ended before the second one started"
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2 and f"is writing into {out}" in second.stderr, second.stderr[-2000:]
    assert json.loads((out / "run_config.json").read_text())["train"]["seed"] == 1


# 7. The demo serves the gallery's pictures and nothing else; rejected uploads are deleted.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_07_the_demo_serves_only_the_pictures_searches_return(tiny_assets, tmp_path):
    gallery_dir = tmp_path / "gallery"
    gallery_dir.mkdir()
    _pictures(gallery_dir, 3)
    (gallery_dir / ".env").write_text("HF_TOKEN=hf_secret_do_not_serve")
    (gallery_dir / "notes.txt").write_text("private notes")
    save_adapter(trained_model(tiny_assets), tmp_path / "run", {"lang": "sw"})
    gallery = folder_gallery(gallery_dir)
    lm = load_language(
        str(tmp_path / "run"),
        gallery,
        "exact",
        captions=[],
        cache_root=tmp_path / "features",
        progress=False,
        log=lambda _: None,
    )
    demo, port = build_demo([lm]), _free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        base = f"http://127.0.0.1:{port}/gradio_api/file="
        for secret in (".env", "notes.txt"):
            status, body = _get(base + str(gallery_dir / secret))
            assert status != 200 and b"secret" not in body and b"private" not in body
        # not even a gallery picture by its path: only what a search returned, through Gradio's cache
        assert _get(base + gallery.paths[0])[0] != 200
    finally:
        demo.close()


def test_07_a_rejected_upload_is_deleted(tmp_path):
    from gradio.data_classes import FileData

    upload = tmp_path / "upload.png"
    upload.write_text("not a picture")
    result = checked_image_class()(type="pil").preprocess(FileData(path=str(upload)))
    assert isinstance(result, UploadRejected) and not upload.exists()


# 8. A push never follows a link out of the run, and the staged JSON holds no local paths.


def test_08_push_skips_links_and_writes_relative_paths(run_folder, tmp_path, capsys):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG private")
    (run_folder / "chart.png").symlink_to(secret)
    assert main(["push", str(run_folder), "--repo", "me/x", "--stage", str(tmp_path / "stage"), "--dry-run"]) == 0
    assert f"not staged: {run_folder / 'chart.png'} is a link" in capsys.readouterr().err
    staged = tmp_path / "stage"
    assert not (staged / "chart.png").exists()
    for name in (METRICS_NAME, "report.json"):
        text = (staged / name).read_text()
        assert str(tmp_path) not in text, text
    assert json.loads((staged / METRICS_NAME).read_text())["data"]["examples"]["missing_image"] == [
        "record 3: photo.png | 'x'"
    ]
    assert json.loads((staged / "report.json").read_text())["top"] == ["examples.png"]


# 9. Picture URLs: a cut-off download, a URL that never answers, an HTML page: reported, never cached.


class _Pictures(BaseHTTPRequestHandler):
    png = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/slow.png":
            time.sleep(3)
        body = b"<html>not found, but 200</html>" if self.path == "/page.png" else self.png
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if self.path == "/page.png" else "image/png")
        self.send_header("Content-Length", str(len(body) * (3 if self.path == "/cut.png" else 1)))
        self.end_headers()
        self.wfile.write(body)  # /cut.png: the connection closes before the promised length

    def log_message(self, *args):
        pass


def test_09_bad_picture_urls_are_reported_and_never_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLILT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(files, "DOWNLOAD_TIMEOUT", 0.5)
    (picture,) = _pictures(tmp_path, 1)
    _Pictures.png = picture.read_bytes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pictures)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        rows = [{"image": f"{url}/{name}.png", "caption": name} for name in ("ok", "page", "cut", "slow")]
        records = load_caption_file(_caption_file(tmp_path, rows))
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert f"could not download {url}/page.png: not a picture (text/html" in err
    assert f"could not download {url}/cut.png: IncompleteRead" in err
    assert f"could not download {url}/slow.png" in err and "timed out" in err
    _, report = validate_records(records, max_bad_fraction=1.0)
    assert report.bad == {"download_failed": 3} and report.kept == 1
    assert len(list((tmp_path / "cache" / "downloads").glob("*.png"))) == 1  # only the picture


# 10. Missing splits or no caption in the language stop the run before anything trains.


@pytest.mark.parametrize(
    "change, message",
    [({"split": "train"}, "no primary val caption in 'en'"), ({"lang": "fr"}, "no record is in 'en'")],
)
def test_10_data_that_cannot_be_evaluated_stops_before_training(
    tiny_assets, shapes_dataset, tmp_path, capsys, change, message
):
    rows = [json.loads(line) | change for line in shapes_dataset.read_text().splitlines()]
    for row in rows:
        row["image"] = str(shapes_dataset.parent / row["image"])
    data = _caption_file(tmp_path, rows)
    assert main(adapt_args(tiny_assets, data, tmp_path / "run", "--config", str(tiny_recipe(tmp_path)))) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "run").exists()  # stopped before any folder was made


# 11. A JSONL line that is JSON but not an object.


@pytest.mark.parametrize("line", ["null", "5", '"text"', "[1, 2]"])
def test_11_a_jsonl_line_that_is_not_an_object_is_named(tmp_path, capsys, line):
    (tmp_path / "c.jsonl").write_text(json.dumps({"image": "a.png", "caption": "x"}) + "\n" + line + "\n")
    assert main(["adapt", "--lang", "sw", "--data", str(tmp_path / "c.jsonl")]) == 2
    assert "c.jsonl, line 2: expected a JSON object" in _error(capsys)


# 12. Malformed adapter folders: a message naming the file, never a traceback or a hang.


def _break_config(folder: Path, how: str) -> None:
    path = folder / ADAPTER_CONFIG_NAME
    config = json.loads(path.read_text())
    if how == "a list":
        path.write_text("[]")
    elif how == "model is a number":
        path.write_text(json.dumps(config | {"model": 5}))
    elif how == "no hidden size":
        path.write_text(json.dumps({k: v for k, v in config.items() if k != "text_hidden_size"}))
    elif how == "text tower is text":
        path.write_text(json.dumps(config | {"model": config["model"] | {"text": "xlm-roberta-base"}}))
    elif how == "a pipe":
        path.unlink()
        os.mkfifo(path)
    elif how == "a link to /dev/zero":
        path.unlink()
        path.symlink_to("/dev/zero")


def _break_weights(folder: Path, how: str) -> None:
    path = folder / ADAPTER_WEIGHTS_NAME
    if how == "truncated weights":
        path.write_bytes(path.read_bytes()[:200])
    elif how == "garbage weights":
        path.write_bytes(b"not safetensors at all" * 10)


@pytest.mark.parametrize(
    "how",
    [
        "a list",
        "model is a number",
        "no hidden size",
        "text tower is text",
        "a pipe",
        "a link to /dev/zero",
        "truncated weights",
        "garbage weights",
    ],
)
def test_12_a_malformed_adapter_folder_is_refused_by_name(tiny_assets, tmp_path, how):
    folder = tmp_path / "adapter"
    save_adapter(trained_model(tiny_assets), folder, {"lang": "sw"})
    _break_config(folder, how)
    _break_weights(folder, how)
    done = subprocess.run(
        [sys.executable, "-m", "mlilt.cli", "eval", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"mlilt: error: {folder}")
    with pytest.raises(AdapterMismatchError):
        load(folder)


# 13. Damaged resume files are found before anything trains; a log line cut by a kill is expected.


@pytest.fixture
def interrupted_run(tiny_assets, shapes_dataset, tmp_path) -> tuple[Path, list[str]]:
    out = tmp_path / "run"
    args = adapt_args(
        tiny_assets,
        shapes_dataset,
        out,
        "--epochs",
        "2",
        "--head-warmup-epochs",
        "2",
        "--config",
        str(tiny_recipe(tmp_path)),
    )
    assert main(args) == 0
    (out / METRICS_NAME).unlink()  # as if it had been killed after its last checkpoint
    return out, [*args, "--resume"]


def test_13_a_log_line_cut_by_a_kill_is_dropped_and_the_run_resumes(interrupted_run):
    out, args = interrupted_run
    log = out / STEP_METRICS_NAME
    log.write_text(log.read_text() + '{"step": 99, "loss": 0.5, "cut": "mid-wri')
    assert main(args) == 0
    assert all(json.loads(line)["step"] < 99 for line in log.read_text().splitlines())


@pytest.mark.parametrize("damage", ["truncated", "random RNG state"])
def test_13_a_damaged_checkpoint_is_named_before_anything_trains(interrupted_run, capsys, damage):
    out, args = interrupted_run
    checkpoint = out / CHECKPOINT_NAME
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    else:
        with safe_open(str(checkpoint), framework="pt") as handle:
            metadata, tensors = handle.metadata(), {k: handle.get_tensor(k) for k in handle.keys()}
        tensors["rng.torch"] = torch.randint(0, 255, tensors["rng.torch"].shape, dtype=torch.uint8)
        save_file(tensors, str(checkpoint), metadata=metadata)
    reference_written = (out / REFERENCE_DIR / ADAPTER_WEIGHTS_NAME).stat().st_mtime_ns
    assert main(args) == 2
    assert f"the checkpoint {checkpoint} is damaged" in _error(capsys)
    assert (out / REFERENCE_DIR / ADAPTER_WEIGHTS_NAME).stat().st_mtime_ns == reference_written  # nothing retrained


# 15. One broken picture in a demo gallery is skipped and named, not fatal.


def test_15_a_broken_gallery_picture_is_skipped_and_named(tiny_assets, tmp_path):
    gallery_dir = tmp_path / "gallery"
    gallery_dir.mkdir()
    good = _pictures(gallery_dir, 3)
    (gallery_dir / "broken.png").write_bytes(good[0].read_bytes()[:120])  # truncated
    save_adapter(trained_model(tiny_assets), tmp_path / "run", {"lang": "sw"})
    logs: list[str] = []
    lm = load_language(
        str(tmp_path / "run"),
        folder_gallery(gallery_dir),
        "exact",
        captions=[],
        cache_root=tmp_path / "features",
        progress=False,
        log=logs.append,
    )
    assert len(lm.adapted.images) == 3 and str(gallery_dir / "broken.png") not in lm.adapted.gallery.paths
    assert any(f"skipped {gallery_dir / 'broken.png'}" in line and "truncated" in line for line in logs)


# 16. Smaller: numbers as captions, a byte-order mark, invisible captions, a resumed run's numbers.


def test_16_numeric_invisible_and_bom_captions(tmp_path):
    (picture,) = _pictures(tmp_path, 1)
    rows = [
        {"image": str(picture), "caption": c, "image_id": str(i)}
        for i, c in enumerate([5, None, "\u200b\u200c", "\ufeff", "mbwa"])
    ]
    good, report = validate_records(load_caption_file(_caption_file(tmp_path, rows)), max_bad_fraction=1.0)
    assert [r.caption for r in good] == ["5", "mbwa"]
    assert report.bad == {"caption_not_text": 1, "empty_caption": 2}
    (tmp_path / "bom.csv").write_bytes("\ufeffimage,caption\n".encode() + f"{picture},paka\n".encode())
    assert [r.caption for r in load_caption_file(tmp_path / "bom.csv")] == ["paka"]


def test_16_a_resumed_run_reports_its_warm_up_and_all_its_training_time(interrupted_run):
    out, args = interrupted_run
    assert main(args) == 0
    metrics = json.loads((out / METRICS_NAME).read_text())
    assert metrics["heads_warmup"]["epochs"] == 2 and (out / HEADS_WARMUP_DIR).is_dir()
    assert metrics["train_seconds"] >= metrics["history"][-1]["seconds"] - 0.05  # every process, not the last
