"""Record checks: what counts as a duplicate."""

from PIL import Image

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
