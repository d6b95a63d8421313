"""Shared fixtures: tiny real towers built in the test (no download) and a tiny real picture dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
torch.set_num_threads(2)

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 60, 220),
    "yellow": (235, 200, 20),
    "black": (10, 10, 10),
    "purple": (140, 40, 170),
}
SHAPES = ("circle", "square", "triangle", "bar")
CORPUS = [f"{c} {s}" for c in COLOURS for s in SHAPES] + [
    "a picture of",
    "mbwa paka ndege",
    "rangi nyekundu",
    "the quick brown fox",
    "ይህ ሙከራ ነው",
    "ẹ kú àárọ̀",
]


def tiny_tokenizer():
    """A WordPiece tokenizer trained here on a few sentences (BERT-style special tokens)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(CORPUS * 3, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )


def tiny_text_model(kind: str = "xlm-roberta", vocab_size: int = 300):
    """A tiny randomly initialised encoder of a real transformers class."""
    import transformers as tf

    common = dict(
        vocab_size=vocab_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=80,
    )
    if kind == "xlm-roberta":
        return tf.XLMRobertaModel(
            tf.XLMRobertaConfig(hidden_size=32, pad_token_id=0, **common), add_pooling_layer=False
        )
    if kind == "bert":
        return tf.BertModel(tf.BertConfig(hidden_size=32, pad_token_id=0, **common), add_pooling_layer=False)
    if kind == "distilbert":
        return tf.DistilBertModel(
            tf.DistilBertConfig(
                vocab_size=vocab_size,
                dim=32,
                n_layers=2,
                n_heads=2,
                hidden_dim=64,
                max_position_embeddings=80,
                pad_token_id=0,
            )
        )
    raise ValueError(kind)


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory) -> dict[str, str]:
    """Tiny towers saved to disk the way real ones are: a transformers folder and a timm weights file."""
    root = tmp_path_factory.mktemp("tiny-towers")
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    text_dir = root / "tiny-xlmr"
    tiny_text_model("xlm-roberta", len(tokenizer)).save_pretrained(text_dir)
    tokenizer.save_pretrained(text_dir)
    import timm
    from safetensors.torch import save_file

    vit = timm.create_model("test_vit", pretrained=False, num_classes=0)
    weights = root / "test_vit.safetensors"
    save_file(vit.state_dict(), str(weights))
    return {"text": str(text_dir), "vision": "test_vit", "vision_weights": str(weights)}


def draw_picture(colour: str, shape: str, size: int = 64) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    box = (12, 12, size - 12, size - 12)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(size // 2, 8), (8, size - 8), (size - 8, size - 8)], fill=fill)
    else:
        draw.rectangle((8, size // 2 - 6, size - 8, size // 2 + 6), fill=fill)
    return image


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
