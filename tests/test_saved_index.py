"""``mlilt features`` and ``mlilt index``: the cache filled ahead (in shares), a gallery indexed once, saved, and
loaded back by the demo while the folder lists the same pictures."""

from __future__ import annotations

import pytest

from mlilt.cli.main import main
from mlilt.demo.gallery import folder_gallery
from mlilt.demo.index import faiss_available
from mlilt.demo.saved_index import index_folder, load_gallery_index
from mlilt.demo.search import load_language
from mlilt.hub.adapter_files import save_adapter
from mlilt.hub.loading import load

from helpers import COLOURS, SHAPES, draw_picture, trained_model


@pytest.fixture
def gallery_run(tiny_assets, tmp_path, monkeypatch):
    monkeypatch.setenv("MLILT_CACHE", str(tmp_path / "cache"))
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for colour in COLOURS:
        for shape in SHAPES:
            draw_picture(colour, shape).save(pictures / f"{colour}-{shape}.png")
    (pictures / "notes.txt").write_text("not a picture")
    (pictures / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    run = tmp_path / "run"
    save_adapter(trained_model(tiny_assets, seed=1, method="adapters"), run, {"lang": "sw"})
    save_adapter(trained_model(tiny_assets, seed=2, method="frozen"), run / "reference-frozen", {"lang": "sw"})
    return pictures, run


def _vision_flags(assets) -> list[str]:
    return ["--vision", assets["vision"], "--vision-weights", assets["vision_weights"], "--quiet"]


def test_features_in_shares_then_merged(gallery_run, tiny_assets, capsys):
    pictures, _ = gallery_run
    for share in ("0/2", "1/2"):
        assert main(["features", "--images", str(pictures), "--shard", share, *_vision_flags(tiny_assets)]) == 0
    shares = capsys.readouterr().out
    assert "plain (share 1 of 2): 0 cached, 13 computed" in shares
    assert "plain (share 2 of 2): 0 cached, 12 computed" in shares
    assert main(["features", "--images", str(pictures), *_vision_flags(tiny_assets)]) == 0
    printed = capsys.readouterr()
    assert "24 cached, 1 computed, 1 unreadable skipped" in printed.out and "merged" in printed.out
    assert "broken.png" in printed.err
    assert main(["features", "--images", str(pictures), "--shard", "2/2"]) == 2
    assert "--shard '2/2'" in capsys.readouterr().err


def test_index_once_and_the_demo_loads_it(gallery_run, capsys):
    pictures, run = gallery_run
    assert main(["index", "--images", str(pictures), "--adapter", str(run), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "sw adapted: 24 pictures" in printed and "sw base: 24 pictures" in printed
    assert "skipped" in printed and "broken.png" in printed

    logs: list[str] = []
    gallery = folder_gallery(pictures)
    loaded = load_language(str(run), gallery, "auto", captions=["red circle"], progress=False, log=logs.append)
    assert sum("from the saved index" in line for line in logs) == 2, logs
    live = load_language(str(run), gallery, "exact", captions=["red circle"], progress=False)
    for query in ("red circle", "mbwa paka ndege", "blue bar"):
        assert [h.path for h in loaded.adapted.search_text(query, 5)] == [
            h.path for h in live.adapted.search_text(query, 5)
        ]
    assert "broken.png" not in " ".join(loaded.adapted.gallery.paths)

    # a new picture in the folder: the saved index is out of date, said so, and the demo indexes anew
    draw_picture("red", "bar").save(pictures / "new.png")
    logs.clear()
    fresh = load_language(str(run), folder_gallery(pictures), "auto", captions=[], progress=False, log=logs.append)
    assert any("out of date" in line for line in logs) and len(fresh.adapted.images) == 25


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is not installed")
def test_a_damaged_saved_index_is_not_used(gallery_run):
    pictures, run = gallery_run
    assert main(["index", "--images", str(pictures), "--adapter", str(run), "--backend", "faiss", "--quiet"]) == 0
    model, gallery = load(str(run)), folder_gallery(pictures)
    (index_folder(model, gallery) / "index.faiss").write_bytes(b"damaged")
    why = load_gallery_index(model, gallery)
    assert isinstance(why, str) and "cannot be read" in why
