"""Trainable parameters per tuning method and tower, for the offline default and for base-sized towers.

Towers are built on the meta device from their configs (no weights, no memory), the method is
applied exactly as in training, and the projection heads (into 256-d) and temperature are added.

    python benchmarks/parameter_table.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import timm
import torch
import transformers as tf
from torch import nn

from mlilt.config import ModelConfig, TowerConfig
from mlilt.errors import TuningError
from mlilt.tuning.parameters import count_parameters
from mlilt.tuning.registry import apply_method, method_names

EMBED = ModelConfig().embed_dim  # the default recipe's shared space
TEXT_METHODS = method_names("text")
VISION_METHODS = method_names("vision")


def text_tower(kind: str) -> nn.Module:
    if kind == "multilingual-e5-small":
        config = tf.BertConfig(
            hidden_size=384,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=1536,
            vocab_size=250037,
            max_position_embeddings=512,
            type_vocab_size=2,
        )
        return tf.BertModel(config, add_pooling_layer=False)
    return tf.XLMRobertaModel(
        tf.XLMRobertaConfig(vocab_size=250002, max_position_embeddings=514), add_pooling_layer=False
    )


def vision_tower(kind: str) -> nn.Module:
    name = "tf_efficientnet_lite0" if kind == "efficientnet-lite0" else "deit_base_patch16_224"
    return timm.create_model(name, pretrained=False, num_classes=0)


def row(text_kind, vision_kind, text_method, vision_method, rf=4):
    with torch.device("meta"):
        text = apply_method(text_tower(text_kind), TowerConfig("t", text_method, reduction_factor=rf))
        try:
            vision = apply_method(vision_tower(vision_kind), TowerConfig("v", vision_method, reduction_factor=rf))
        except TuningError:
            return None  # e.g. adapters / LayerNorm on a convolutional tower
        hidden = text.config.hidden_size
        heads = nn.ModuleList([nn.Linear(hidden, EMBED), nn.Linear(vision.num_features, EMBED)])
    t, v, h = count_parameters(text), count_parameters(vision), count_parameters(heads)
    trainable = t.trainable + v.trainable + h.trainable + 1  # + temperature
    total = t.total + v.total + h.total + 1
    return {
        "text": text_kind,
        "vision": vision_kind,
        "text_method": text_method,
        "vision_method": vision_method,
        "text_trainable": t.trainable,
        "text_total": t.total,
        "vision_trainable": v.trainable,
        "vision_total": v.total,
        "heads": h.trainable,
        "trainable": trainable,
        "total": total,
        "percent": 100 * trainable / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = []
    for text_kind, vision_kind in (("multilingual-e5-small", "efficientnet-lite0"), ("xlm-roberta-base", "deit-base")):
        for vm in VISION_METHODS:
            for tm in TEXT_METHODS:
                r = row(text_kind, vision_kind, tm, vm)
                if r:
                    rows.append(r)
    print(
        "| towers | text method | vision method | text trainable | vision trainable | heads+T | total trainable "
        "| share |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['text']} + {r['vision']} | {r['text_method']} | {r['vision_method']} | "
            f"{r['text_trainable']:,} / {r['text_total']:,} | {r['vision_trainable']:,} / {r['vision_total']:,} | "
            f"{r['heads'] + 1:,} | {r['trainable']:,} / {r['total']:,} | {r['percent']:.2f}% |"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
