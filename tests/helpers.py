"""Shared test helpers: tiny real towers built in the test (no download), real pictures, a trained stand-in model,
and the command line of a tiny ``mlilt adapt`` run. Fixtures built from them are in ``conftest.py``."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers as tf
import yaml
from PIL import Image, ImageDraw
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from mlilt.config import ModelConfig, TowerConfig
from mlilt.model import build_model
from mlilt.resources import configs_dir

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
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(CORPUS * 3, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tf.PreTrainedTokenizerFast(
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


TEXTS = ["red circle", "mbwa", "ይህ ሙከራ ነው", "a picture of blue bar"]


def tiny_model_config(assets, method="adapters", vision_method="frozen", **text) -> ModelConfig:
    """The tiny towers of ``assets`` (the ``tiny_assets`` fixture) with the given methods and text settings."""
    return ModelConfig(
        text=TowerConfig(assets["text"], method, **text),
        vision=TowerConfig(assets["vision"], vision_method, weights=assets["vision_weights"]),
        embed_dim=16,
    )


def trained_model(assets, seed: int = 1, **config):
    """A tiny model whose trainable tensors were moved away from their start (a stand-in for training)."""
    model = build_model(tiny_model_config(assets, **config), seed=seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def adapt_args(assets, data, out, *extra) -> list[str]:
    """``mlilt adapt`` on the tiny towers and a caption file, quiet, batch 8."""
    return [
        "adapt",
        "--lang",
        "en",
        "--data",
        str(data),
        "--text",
        assets["text"],
        "--vision",
        assets["vision"],
        "--vision-weights",
        assets["vision_weights"],
        "--batch-size",
        "8",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def tiny_recipe(folder: Path, **train) -> Path:
    """The default recipe with a 16-d embedding and the given train settings, written into ``folder``."""
    recipe = yaml.safe_load((configs_dir() / "default.yaml").read_text())
    recipe["model"]["embed_dim"] = 16
    recipe["model"]["image_views"] = ["plain"]
    recipe["data"].pop("extra_langs", None)
    recipe["train"].update(train)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path
