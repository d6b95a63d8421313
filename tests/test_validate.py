"""Record checks: what counts as a duplicate; picture checks remembered across runs."""

import os
import sqlite3
from pathlib import Path

from PIL import Image

from mlilt.data import validate
from mlilt.data.picture_checks import PictureChecks
from mlilt.data.records import CaptionRecord
from mlilt.data.validate import validate_records


def test_a_duplicate_is_the_same_picture_caption_and_language(tmp_path):
    picture = tmp_path / "taxi.png"
    Image.new("RGB", (8, 8), (250, 200, 0)).save(picture)

    def record(caption: str, lang: str | None) -> CaptionRecord:
        return CaptionRecord(image=str(picture), caption=caption, lang=lang, image_id="taxi", split="train")

    records = [record("taxi", "sw"), record("taxi", "en"), record("taxi", "sw"), record(" taxi ", "en")]
    good, report = validate_records(records, max_bad_fraction=0.5)
    assert [(r.caption, r.lang) for r in good] == [("taxi", "sw"), ("taxi", "en")]
    assert report.bad == {"duplicate_pair": 2}
    assert report.examples["duplicate_pair"][0].startswith("record 3:")


def _pictures(folder, count: int) -> list[CaptionRecord]:
    records = []
    for number in range(count):
        path = folder / f"p{number}.png"
        Image.new("RGB", (8 + number, 8), (40 * number, 90, 200)).save(path)
        records.append(CaptionRecord(image=str(path), caption=f"picture {number}", image_id=path.name, split="train"))
    return records


def _counting(monkeypatch) -> list[str]:
    decoded = []

    def check(path, max_pixels):
        decoded.append(path)
        return real(path, max_pixels)

    real = validate._image_problem
    monkeypatch.setattr(validate, "_image_problem", check)
    return decoded


def test_a_rerun_decodes_only_the_pictures_written_since(tmp_path, monkeypatch):
    records, store = _pictures(tmp_path, 4), tmp_path / "checks.sqlite"
    decoded = _counting(monkeypatch)
    first = validate_records(records, picture_checks=PictureChecks(store))
    assert len(decoded) == 4 and first[1].kept == 4
    decoded.clear()
    assert validate_records(records, picture_checks=PictureChecks(store)) == first and decoded == []
    # one picture overwritten with bytes that are no picture: it is checked again and dropped
    broken = Path(records[2].image)
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a picture any more")
    stat = broken.stat()
    os.utime(broken, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # whatever the clock's resolution
    good, report = validate_records(records, max_bad_fraction=0.5, picture_checks=PictureChecks(store))
    assert decoded == [str(broken)] and report.bad == {"unreadable_image": 1} and len(good) == 3
    # the pixel limit is part of what was checked: a smaller one checks again
    decoded.clear()
    good, report = validate_records(records, max_bad_fraction=0.9, max_pixels=70, picture_checks=PictureChecks(store))
    assert len(decoded) == 4 and report.bad["too_many_pixels"] == 2


def test_a_damaged_check_store_is_named_removed_and_built_again(tmp_path, monkeypatch, capsys):
    records, store = _pictures(tmp_path, 3), tmp_path / "checks.sqlite"
    store.write_bytes(b"this is not a database, but it is where the checks are kept" * 100)
    decoded = _counting(monkeypatch)
    good, report = validate_records(records, picture_checks=PictureChecks(store))
    assert len(good) == 3 and len(decoded) == 3
    assert f"picture-check cache {store} cannot be read" in capsys.readouterr().err
    decoded.clear()
    validate_records(records, picture_checks=PictureChecks(store))
    assert decoded == []  # built again, and used


def test_a_check_store_held_by_another_process_is_left_alone(tmp_path, monkeypatch, capsys):
    from mlilt.data import picture_checks

    records, store = _pictures(tmp_path, 2), tmp_path / "checks.sqlite"
    validate_records(records, picture_checks=PictureChecks(store))
    monkeypatch.setattr(picture_checks, "WAIT_FOR_LOCK_S", 0.1)
    holder = sqlite3.connect(store)
    holder.execute("BEGIN EXCLUSIVE")  # another run writing its checks, for longer than this one waits
    good, _ = validate_records(records, picture_checks=PictureChecks(store))
    holder.rollback()
    assert len(good) == 2 and "cannot be read" not in capsys.readouterr().err  # not taken for damaged
    decoded = _counting(monkeypatch)
    validate_records(records, picture_checks=PictureChecks(store))
    assert decoded == []  # still there, and used once free
