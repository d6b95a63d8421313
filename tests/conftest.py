"""Shared fixtures: tiny real towers built in the test (no download) and a tiny real picture dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Before anything imports huggingface_hub or gradio (they read these once, on import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# A fixed thread count: commands run in-process would otherwise follow the machine's load mid-test (mlilt.threads),
# and two computations compared bit for bit must use the same number of threads.
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from helpers import COLOURS, SHAPES, draw_picture, tiny_text_model, tiny_tokenizer  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory) -> dict[str, str]:
    """Tiny towers saved to disk the way real ones are: a transformers folder and a timm weights file."""
    root = tmp_path_factory.mktemp("tiny-towers")
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    text_dir = root / "tiny-xlmr"
    tiny_text_model("xlm-roberta", len(tokenizer)).save_pretrained(text_dir)
    tokenizer.save_pretrained(text_dir)
    vit = timm.create_model("test_vit", pretrained=False, num_classes=0)
    weights = root / "test_vit.safetensors"
    save_file(vit.state_dict(), str(weights))
    return {"text": str(text_dir), "vision": "test_vit", "vision_weights": str(weights)}


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory) -> Path:
    """24 real PNG pictures (6 colours x 4 shapes) with two captions each, as a JSONL caption file."""
    root = tmp_path_factory.mktemp("shapes")
    lines = []
    for colour in COLOURS:
        for shape in SHAPES:
            name = f"{colour}-{shape}.png"
            draw_picture(colour, shape).save(root / name)
            lines.append({"image": name, "caption": f"{colour} {shape}", "lang": "en"})
            lines.append({"image": name, "caption": f"a picture of {colour} {shape}", "lang": "en", "primary": False})
    path = root / "captions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path
