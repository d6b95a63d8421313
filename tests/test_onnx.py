"""``mlilt export --onnx``: every method, adapters included, gives the torch model's embeddings without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mlilt.cli.main import main
from mlilt.demo.gallery import folder_gallery
from mlilt.demo.search import load_language, load_onnx_language
from mlilt.hub.adapter_files import save_adapter
from mlilt.hub.onnx_export import export_onnx
from mlilt.onnx_runtime import CONFIG_NAME, OnnxModel
from mlilt.tuning.registry import method_names

from helpers import TEXTS, draw_picture, trained_model


def _pictures() -> list[Image.Image]:
    wide = Image.new("RGB", (90, 40), "white")
    wide.paste(draw_picture("blue", "bar").resize((40, 40)), (25, 0))
    icon = Image.new("RGBA", (50, 70), (0, 0, 0, 0))
    icon.paste((200, 30, 30, 255), (10, 10, 40, 60))
    return [draw_picture("red", "circle"), draw_picture("green", "triangle", size=100), wide, icon]


def _cosines(a: np.ndarray, b: torch.Tensor) -> np.ndarray:
    return (a * b.numpy()).sum(1)


@pytest.mark.parametrize("method", method_names("text"))
def test_every_method_exports_and_matches_torch(tiny_assets, tmp_path, method):
    model = trained_model(tiny_assets, method=method)
    agreement = export_onnx(model, tmp_path / "onnx")
    assert {p.name for p in (tmp_path / "onnx").iterdir()} == {
        "text.onnx",
        "image.onnx",
        "text.int8.onnx",
        "image.int8.onnx",
        "tokenizer.json",
        CONFIG_NAME,
    }
    assert all(v["min_cosine"] >= 0.999 for k, v in agreement.items() if k.endswith("fp32"))
    fp32, int8 = OnnxModel(tmp_path / "onnx"), OnnxModel(tmp_path / "onnx", int8=True)
    with torch.no_grad():
        texts, pictures = model.embed_texts(TEXTS), model.embed_images(_pictures())
    assert _cosines(fp32.embed_texts(TEXTS), texts).min() >= 0.999
    assert _cosines(fp32.embed_images(_pictures()), pictures).min() >= 0.999
    assert _cosines(int8.embed_texts(TEXTS), texts).mean() >= 0.99
    assert _cosines(int8.embed_images(_pictures()), pictures).mean() >= 0.99


def test_vision_adapters_export_too(tiny_assets, tmp_path):
    model = trained_model(tiny_assets, method="lora", vision_method="adapters")
    export_onnx(model, tmp_path / "onnx", int8=False)
    with torch.no_grad():
        expected = model.embed_images(_pictures())
    assert _cosines(OnnxModel(tmp_path / "onnx").embed_images(_pictures()), expected).min() >= 0.999


def test_pictures_are_prepared_as_the_tower_prepares_them(tiny_assets, tmp_path):
    model = trained_model(tiny_assets)
    export_onnx(model, tmp_path / "onnx", int8=False)
    runtime = OnnxModel(tmp_path / "onnx")
    for picture in _pictures():
        expected = model.vision.preprocess(picture).numpy()
        assert np.abs(runtime.preprocess(picture) - expected).max() < 1e-5
    ids = runtime.tokenizer.encode_batch(TEXTS)
    assert [e.ids for e in ids] == model.text.tokenize(TEXTS)["input_ids"].tolist()


def test_the_runtime_needs_no_torch(tiny_assets, tmp_path):
    export_onnx(trained_model(tiny_assets), tmp_path / "onnx", int8=False)
    script = (
        "import sys; sys.modules['torch'] = None  # any import of torch now fails\n"
        "from PIL import Image\n"
        "from mlilt.onnx_runtime import OnnxModel\n"
        f"m = OnnxModel({str(tmp_path / 'onnx')!r})\n"
        "print(m.embed_texts(['mbwa', 'paka']).shape, m.embed_images([Image.new('RGB', (40, 30))]).shape)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(2, 16) (1, 16)"


def test_export_command_and_the_demo_served_from_onnx(tiny_assets, tmp_path, capsys):
    model = trained_model(tiny_assets)
    save_adapter(model, tmp_path / "run", {"lang": "sw"})
    assert main(["export", str(tmp_path / "run")]) == 2
    assert "--onnx OUT" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "run"), "--onnx", str(tmp_path / "onnx")]) == 0
    assert "wrote ONNX models" in capsys.readouterr().out
    gallery_dir = tmp_path / "gallery"
    gallery_dir.mkdir()
    for colour, shape in (("red", "circle"), ("green", "square"), ("blue", "triangle"), ("yellow", "bar")):
        draw_picture(colour, shape).save(gallery_dir / f"{colour}-{shape}.png")
    gallery = folder_gallery(gallery_dir)
    quiet = dict(captions=[], progress=False, log=lambda _: None)
    served = load_onnx_language(tmp_path / "onnx", gallery, **quiet)
    torch_side = load_language(str(tmp_path / "run"), gallery, cache_root=tmp_path / "features", **quiet)
    assert served.lang == "sw" and served.base is None
    for query in ("red circle", "rangi nyekundu"):
        onnx_hits = [h.path for h in served.adapted.search_text(query, 4)]
        assert onnx_hits == [h.path for h in torch_side.adapted.search_text(query, 4)]
