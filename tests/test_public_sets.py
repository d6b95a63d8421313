"""Public evaluation set loaders, on tiny local copies written here in each set's real layout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mlilt.data.public_sets import load_coco_captions, load_multi30k, load_xm3600, load_xtd10
from mlilt.data.records import SPLITS
from mlilt.data.sources import load_records

from helpers import draw_picture

PICTURES = [("red", "circle"), ("green", "square"), ("blue", "triangle")]


def _pictures(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (colour, shape) in zip(names, PICTURES):
        draw_picture(colour, shape, size=32).save(folder / name, format="PNG")  # real pictures (PNG bytes)


def _check(records, n, split=None):
    assert len(records) == n
    assert all(Path(r.image).is_file() and r.caption and r.split in SPLITS for r in records)
    if split:
        assert {r.split for r in records} == {split}


def test_xm3600(tmp_path):
    keys = ["000411001ff7dd4f", "00106bd9b2a6b4f1", "0012ab65f2e10c93"]
    _pictures(tmp_path / "images", [f"{k}.jpg" for k in keys])
    lines = [
        {
            "image/key": k,
            "image/locale": "sw",
            "sw": {"caption": [f"picha {i}", f"picha nyingine {i}"], "caption/tokenized": [f"picha {i}"]},
            "en": {"caption": [f"picture {i}"]},
            "quz": {"caption": [f"rikch'ay {i}"]},
        }
        for i, k in enumerate(keys)
    ]
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    sw = load_xm3600(tmp_path, "sw")
    _check(sw, 6, "test")
    assert sw[0].image_id == "xm3600-000411001ff7dd4f" and sw[1].caption == "picha nyingine 0"
    assert len({r.image_id for r in sw}) == 3 and all(r.lang == "sw" for r in sw)
    _check(load_xm3600(tmp_path / "captions.jsonl", "qu"), 3)  # CLDR qu = the set's quz
    with pytest.raises(ValueError, match="locales there: .*'en'.*'quz'.*'sw'"):
        load_xm3600(tmp_path, "yo")


def test_multi30k(tmp_path):
    names = ["1000092795.jpg", "10002456.jpg", "1000268201.jpg"]
    _pictures(tmp_path / "images", names)
    (tmp_path / "image_splits").mkdir()
    (tmp_path / "raw").mkdir()
    for split, chosen in (("train", names[:2]), ("val", names[2:]), ("test_2016_flickr", names[:1])):
        (tmp_path / "image_splits" / f"{split}.txt").write_text("\n".join(chosen) + "\n")
        text = "".join(f"Ein Bild {split} {n}\n" for n in range(len(chosen)))
        if split == "train":
            with gzip.open(tmp_path / "raw" / f"{split}.de.gz", "wt", encoding="utf-8") as handle:
                handle.write(text)
        else:
            (tmp_path / "raw" / f"{split}.de").write_text(text, encoding="utf-8")
    records = load_multi30k(tmp_path, "de")
    _check(records, 4)
    assert [r.split for r in records] == ["train", "train", "val", "test"]
    assert records[0].image_id == records[3].image_id == "flickr30k-1000092795"
    with pytest.raises(FileNotFoundError, match="no train.fr"):
        load_multi30k(tmp_path, "fr")


def test_xtd10(tmp_path):
    names = [f"COCO_train2014_{n:012d}.jpg" for n in (9, 25, 30)]
    _pictures(tmp_path / "images", names)
    (tmp_path / "test_image_names.txt").write_text("\n".join(names) + "\n")
    (tmp_path / "test_1kcaptions_jp.txt").write_text("赤い丸\n緑の四角\n青い三角\n", encoding="utf-8")
    (tmp_path / "test_1kcaptions_de.txt").write_text("ein roter Kreis\nein grünes Quadrat\n", encoding="utf-8")
    ja = load_xtd10(tmp_path, "ja")
    _check(ja, 3, "test")
    assert ja[2].caption == "青い三角" and ja[2].image.endswith(names[2])
    with pytest.raises(ValueError, match="2 captions but test_image_names.txt 3"):
        load_xtd10(tmp_path, "de")
    with pytest.raises(FileNotFoundError, match=r"languages there: \['de', 'jp'\]"):
        load_xtd10(tmp_path, "ko")


def test_coco_captions(tmp_path):
    names = ["a.png", "b.png", "c.png"]
    _pictures(tmp_path / "val2014", names)
    data = {
        "images": [{"id": i, "file_name": n} for i, n in enumerate(names)] + [],
        "annotations": [{"id": 10 + k, "image_id": k % 3, "caption": f" caption {k} "} for k in range(6)],
    }
    data["images"][0]["split"] = "restval"
    path = tmp_path / "captions_val2014.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    records = load_coco_captions(path, images=tmp_path / "val2014")
    _check(records, 6)
    assert records[0].caption == "caption 0" and records[0].split == "train" and records[0].lang == "en"
    assert {r.split for r in load_coco_captions(path, tmp_path / "val2014", split="test")} == {"test"}


@pytest.mark.parametrize(
    "loader, name",
    [
        (load_xm3600, "google/crossmodal-3600"),
        (load_xtd10, "https://example.org/xtd10.zip"),
        (load_multi30k, "bentrevett/multi30k"),
    ],
)
def test_hub_names_and_urls_say_how_to_use_a_local_copy(loader, name):
    with pytest.raises(FileNotFoundError, match="only from a local copy.*pass the local folder"):
        loader(name, "en")


def test_public_sets_are_reachable_as_data_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="local copy"):
        load_records("xm3600:google/crossmodal-3600", lang="sw")
