"""Scarce-data controls: deterministic subsampling of the training split only."""

from __future__ import annotations

import random

import pytest

from mlilt.data.records import CaptionRecord
from mlilt.data.scarcity import limit_training


def _records() -> list[CaptionRecord]:
    records = []
    for n in range(30):
        split = "train" if n < 20 else ("val" if n < 25 else "test")
        for k in range(3):
            records.append(
                CaptionRecord(
                    image=f"/p/{n}.png",
                    caption=f"picture {n} caption {k}",
                    image_id=f"p{n}",
                    split=split,
                    primary=k == 0,
                )
            )
    return records


def test_no_limit_keeps_everything():
    records = _records()
    assert limit_training(records) == records


def test_max_images_keeps_whole_pictures_and_all_eval_records():
    records = _records()
    kept = limit_training(records, max_images=5)
    train = [r for r in kept if r.split == "train"]
    assert len({r.image_id for r in train}) == 5 and len(train) == 15  # every caption of the chosen pictures
    assert [r for r in kept if r.split != "train"] == [r for r in records if r.split != "train"]
    assert kept == [r for r in records if r in kept]  # input order kept


def test_max_captions_counts_records():
    kept = limit_training(_records(), max_captions=7)
    assert sum(r.split == "train" for r in kept) == 7 and sum(r.split != "train" for r in kept) == 30


def test_deterministic_order_independent_nested_and_seeded():
    records = _records()
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    a = limit_training(records, max_images=6, seed=3)
    assert set(a) == set(limit_training(shuffled, max_images=6, seed=3))
    assert set(limit_training(records, max_images=3, seed=3)) <= set(a)  # learning-curve points are nested
    assert set(limit_training(records, max_captions=5)) <= set(limit_training(records, max_captions=20))
    assert set(limit_training(records, max_images=6, seed=4)) != set(a)
    both = limit_training(records, max_images=4, max_captions=5)
    assert sum(r.split == "train" for r in both) == 5 and len({r.image_id for r in both if r.split == "train"}) <= 4


@pytest.mark.parametrize("kwargs", [{"max_images": 0}, {"max_captions": -1}])
def test_bad_limits_are_refused(kwargs):
    with pytest.raises(ValueError, match="must be >= 1"):
        limit_training(_records(), **kwargs)
