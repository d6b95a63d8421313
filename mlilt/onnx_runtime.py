"""Embedding texts and pictures with an ``mlilt export --onnx`` folder: onnxruntime, tokenizers, numpy and Pillow,
no torch (importing this module never imports it).

    from mlilt.onnx_runtime import OnnxModel
    model = OnnxModel("exports/sw-onnx", int8=True)
    texts = model.embed_texts(["mbwa", "paka"])          # (2, 256) float32, L2-normalised
    pictures = model.embed_images([Image.open("a.png")])  # (1, 256)
    scores = pictures @ texts.T

Pictures are prepared as the vision tower's eval transform does (transparency on the tower's background,
shorter side resized, centre crop, normalised), so the embeddings match the torch model's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from tokenizers import Tokenizer

from mlilt.data.images import to_rgb
from mlilt.errors import NotFoundError

CONFIG_NAME = "mlilt-onnx.json"
FORMAT_VERSION = 1
_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


class OnnxModel:
    """The two ONNX encoders of an export folder (fp32, or int8 weights with ``int8=True``).

    Args:
        folder: What ``mlilt export --onnx`` wrote.
        int8: Use ``text.int8.onnx`` / ``image.int8.onnx``.
        threads: onnxruntime's intra-op threads (default: its own choice).
    """

    def __init__(self, folder: str | Path, int8: bool = False, threads: int | None = None):
        self.folder = Path(folder)
        path = self.folder / CONFIG_NAME
        if not path.is_file():
            raise NotFoundError(f"{self.folder} has no {CONFIG_NAME}: is it an `mlilt export --onnx` folder?")
        self.config = json.loads(path.read_text(encoding="utf-8"))
        suffix = ".int8.onnx" if int8 else ".onnx"
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.text = ort.InferenceSession(str(self.folder / f"text{suffix}"), options)
        self.image = ort.InferenceSession(str(self.folder / f"image{suffix}"), options)
        text = self.config["text"]
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(text["max_length"])
        self.tokenizer.enable_padding(pad_id=text["pad_id"])
        self.embed_dim = self.config["embed_dim"]

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised embeddings of raw texts, shape ``(len(texts), embed_dim)``."""
        out = [np.empty((0, self.embed_dim), np.float32)]
        for start in range(0, len(texts), batch_size):
            encoded = self.tokenizer.encode_batch(
                [self.config["text"]["prefix"] + t for t in texts[start : start + batch_size]]
            )
            ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
            out.append(self.text.run(None, {"input_ids": ids, "attention_mask": mask})[0])
        return np.concatenate(out)

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 16) -> np.ndarray:
        """L2-normalised embeddings of PIL pictures, shape ``(len(images), embed_dim)``."""
        out = [np.empty((0, self.embed_dim), np.float32)]
        for start in range(0, len(images), batch_size):
            pixels = np.stack([self.preprocess(image) for image in images[start : start + batch_size]])
            out.append(self.image.run(None, {"pixels": pixels})[0])
        return np.concatenate(out)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One picture -> normalised ``(3, height, width)`` float32 pixels, as the tower's eval transform does."""
        spec = self.config["image"]
        image = to_rgb(image, spec["background"])
        width, height = image.size
        short = spec["resize_shorter_side"]
        if width <= height:
            size = (short, int(short * height / width))
        else:
            size = (int(short * width / height), short)
        image = image.resize(size, _RESAMPLE[spec["interpolation"]])
        crop_h, crop_w = spec["crop"]
        top, left = int(round((size[1] - crop_h) / 2.0)), int(round((size[0] - crop_w) / 2.0))
        image = image.crop((left, top, left + crop_w, top + crop_h))
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        mean = np.asarray(spec["mean"], np.float32)[:, None, None]
        std = np.asarray(spec["std"], np.float32)[:, None, None]
        return (pixels - mean) / std
