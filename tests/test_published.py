"""Numbers comparable with published ones: public sets built as CLIP_benchmark builds them, beside open_clip's."""

from __future__ import annotations

import json

from mlilt.evaluation.languages import evaluate_language
from mlilt.evaluation.published import SOURCE, published_results
from mlilt.evaluation.report import markdown

from helpers import draw_picture, trained_model

KEYS = ["000411001ff7dd4f", "00106bd9b2a6b4f1", "0012ab65f2e10c93"]


def _xm3600(folder) -> None:
    (folder / "images").mkdir(parents=True)
    for key, (colour, shape) in zip(KEYS, [("red", "circle"), ("green", "square"), ("blue", "triangle")]):
        draw_picture(colour, shape).save(folder / "images" / f"{key}.jpg", format="PNG")
    lines = [
        {"image/key": k, "sw": {"caption": [f"picha {i}", f"picha nyingine {i}", f"ya tatu {i}"]}}
        for i, k in enumerate(KEYS)
    ]
    (folder / "captions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_xm3600_is_evaluated_as_clip_benchmark_does_beside_the_published_numbers(tiny_assets, tmp_path):
    _xm3600(tmp_path / "xm3600")
    result = evaluate_language(trained_model(tiny_assets), "sw", f"xm3600:{tmp_path / 'xm3600'}")
    assert result["retrieval"]["num_captions"] == 9  # mlilt's own protocol: every caption
    comparable = result["comparable"]
    assert comparable["protocol"] == "clip-benchmark" and "first caption" in comparable["set_as"]
    assert comparable["this_model"]["num_captions"] == 3 and comparable["this_model"]["num_pictures"] == 3
    published = {f"{r['model']} ({r['pretrained']})": r for r in comparable["published"]["rows"]}
    assert published["nllb-clip-large-siglip (mrl)"]["text_to_image_R@1"] == 49.75  # open_clip's table, sw
    assert comparable["published"]["source"] == SOURCE and "9a3e7d0f" in SOURCE
    report = {
        "run": "r",
        "data": "xm3600:...",
        "split": "test",
        "protocol": "strict",
        "protocol_description": "",
        "protocols": {"strict": "against"},
        "languages": {"sw": {"adapted": result}},
    }
    text = markdown(report, [])
    assert "## Comparable with published numbers (sw)" in text and "| nllb-clip-large-siglip (mrl) | 49.8 |" in text


def test_published_codes_follow_the_sets_own():
    assert {r["lang"] for r in published_results("xtd10", "ja")["rows"]} == {"jp"}
    assert published_results("xm3600", "qu")["rows"] and published_results("multi30k", "de")["rows"] == []
