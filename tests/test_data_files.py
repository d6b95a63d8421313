"""Caption data a user brings: JSONL, CSV, a folder with a captions file, a saved ``datasets`` dataset."""

from __future__ import annotations

import csv
import json

import pytest

from mlilt.data.files import caption_record
from mlilt.data.records import split_of
from mlilt.data.sources import load_records

from helpers import draw_picture


def _pictures(folder):
    for colour, shape in (("red", "circle"), ("blue", "bar")):
        draw_picture(colour, shape).save(folder / f"{colour}.png")
    return [("red.png", "nyekundu"), ("red.png", "duara"), ("blue.png", "bluu")]


def test_jsonl_relative_paths_ids_and_splits(tmp_path):
    rows = _pictures(tmp_path)
    lines = [{"image": img, "caption": cap} for img, cap in rows]
    lines[2]["split"] = "test"
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    records = load_records(str(tmp_path / "c.jsonl"), lang="sw")
    assert [r.caption for r in records] == ["nyekundu", "duara", "bluu"]
    assert records[0].image == str(tmp_path / "red.png") and records[0].image_id == "red.png"
    assert records[0].split == records[1].split == split_of("red.png")  # by picture, never by caption
    assert records[2].split == "test" and all(r.lang == "sw" for r in records)


def test_csv_and_folder(tmp_path):
    rows = _pictures(tmp_path)
    with open(tmp_path / "captions.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "caption", "lang"])
        writer.writeheader()
        writer.writerows({"image": img, "caption": cap, "lang": "sw"} for img, cap in rows)
    from_file = load_records(str(tmp_path / "captions.csv"))
    from_folder = load_records(str(tmp_path))
    assert from_file == from_folder and len(from_file) == 3 and from_file[0].lang == "sw"


def test_malformed_files_say_where(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"image": "a.png", "caption": "x"}\n{oops\n')
    with pytest.raises(ValueError, match="line 2"):
        load_records(str(tmp_path / "bad.jsonl"))
    (tmp_path / "nocap.jsonl").write_text('{"image": "a.png"}\n')
    with pytest.raises(ValueError, match="'caption'"):
        load_records(str(tmp_path / "nocap.jsonl"))
    with pytest.raises(FileNotFoundError):
        load_records(str(tmp_path / "absent.jsonl"))


def test_a_saved_datasets_dataset(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("MLILT_CACHE", str(tmp_path / "cache"))
    ds = datasets.Dataset.from_dict(
        {
            "image": [draw_picture("red", "circle"), draw_picture("blue", "bar")],
            "caption": [["nyekundu", "duara"], ["bluu"]],
        },
        features=datasets.Features({"image": datasets.Image(), "caption": datasets.List(datasets.Value("string"))}),
    )
    path = tmp_path / "ds"
    ds.save_to_disk(str(path))
    records = load_records(str(path), lang="sw")
    assert [r.caption for r in records] == ["nyekundu", "duara", "bluu"]
    assert records[0].image_id == records[1].image_id != records[2].image_id
    assert all(r.image.endswith(".png") for r in records)


def test_an_unreachable_hub_dataset_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="save_to_disk"):
        load_records("someone/no-such-captions", lang="sw")


def _eager_records(path, lang):
    """The records of a JSONL file built the plain way: the whole file read, every line parsed, then built."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    return [caption_record(row, str((path.parent / row["image"]).resolve()), row["image"], lang) for row in rows]


def test_the_row_by_row_reader_gives_the_records_the_eager_reading_gives(tmp_path):
    rows = _pictures(tmp_path)
    lines = [{"image": img, "caption": cap} for img, cap in rows * 50]
    lines[3] |= {"lang": "yo", "split": "val", "source": "machine-translated:opus-mt", "primary": "false"}
    lines[7] |= {"image_id": "custom-id", "caption": 42}
    path = tmp_path / "c.jsonl"
    path.write_text("\ufeff" + "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n")
    streamed = load_records(str(path), lang="sw")
    assert streamed == _eager_records(path.with_name("c.jsonl"), "sw") and len(streamed) == 150
    assert streamed[3].lang == "yo" and not streamed[3].primary and streamed[7].caption == 42
    # repeated strings are kept once: a million captions of 100,000 pictures hold 100,000 paths, not a million
    assert streamed[0].image is streamed[3].image and streamed[0].image_id is streamed[6].image_id
    assert not hasattr(streamed[0], "__dict__")  # slotted records
