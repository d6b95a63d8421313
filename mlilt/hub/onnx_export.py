"""``mlilt export --onnx``: both sides of an adapter as ONNX models that serve without torch or mlilt's towers.

For every method, adapters included (their forward hooks are traced like any other layer), the export writes:

- ``text.onnx``: token ids and attention mask -> the normalised text embedding (tower, adapters or LoRA /
  (IA)³ layers, pooling, head, normalisation), with ``tokenizer.json`` beside it;
- ``image.onnx``: preprocessed pixels -> the normalised picture embedding (tower, head, normalisation);
- ``text.int8.onnx`` and ``image.int8.onnx``: the same with int8 weights (onnxruntime's dynamic
  quantisation, per channel), smaller and faster on CPU;
- ``mlilt-onnx.json``: how to tokenise (prefix, length) and preprocess (resize, crop, mean, std, background),
  what it was exported from, and the agreement measured before the export was kept.

The export is loaded back with onnxruntime and compared with the torch model on probe texts and pictures;
below the thresholds nothing is kept. :mod:`mlilt.onnx_runtime` embeds with the folder without torch.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from PIL import Image
from torch import nn
from torchvision import transforms

from mlilt.errors import NotExportableError, RunFolderError, TuningError
from mlilt.hub.adapter_files import read_adapter_config
from mlilt.hub.loading import load
from mlilt.model import DualEncoder
from mlilt.onnx_runtime import CONFIG_NAME, FORMAT_VERSION, OnnxModel
from mlilt.tuning.sites import module_names
from mlilt.version import __version__

PROBE_TEXTS = ["mbwa", "a red circle", "ይህ ሙከራ ነው", "ẹ kú àárọ̀", "the quick brown fox jumps over the lazy dog"]
FP32_MIN_COSINE = 0.999  # every probe
INT8_MEAN_COSINE = 0.99  # int8 weights move each embedding a little: the mean over the probes must stay this close


class _TextSide(nn.Module):
    def __init__(self, model: DualEncoder):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids, attention_mask)


class _ImageSide(nn.Module):
    def __init__(self, model: DualEncoder):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)


def preprocessing(model: DualEncoder) -> dict:
    """The vision tower's eval transform as plain numbers (resize shorter side, centre crop, normalise)."""
    steps = {type(step).__name__: step for step in model.vision.transform.transforms}
    supported = {"Resize", "CenterCrop", "ToTensor", "MaybeToTensor", "Normalize"}
    if set(steps) - supported or not {"Resize", "CenterCrop", "Normalize"} <= set(steps):
        raise NotExportableError(
            f"the vision tower's preprocessing ({', '.join(steps)}) has no equivalent in mlilt's ONNX runtime, which "
            "resizes, centre-crops and normalises"
        )
    resize, crop, normalise = steps["Resize"], steps["CenterCrop"], steps["Normalize"]
    if not isinstance(resize.size, int) and len(resize.size) != 1:
        raise NotExportableError(f"the vision tower resizes to a fixed shape {resize.size}; only a shorter side is")
    return {
        "resize_shorter_side": resize.size if isinstance(resize.size, int) else resize.size[0],
        "interpolation": transforms.InterpolationMode(resize.interpolation).value,
        "crop": list(crop.size),
        "mean": [float(x) for x in normalise.mean],
        "std": [float(x) for x in normalise.std],
        "background": model.vision.background,
        "max_pixels": model.vision.max_pixels,
    }


def _export(module: nn.Module, inputs: tuple, path: Path, names: list[str], output: str, axes: dict) -> None:
    # torch's TorchScript exporter: deprecated in favour of the dynamo one but supported by torch < 2.15 (pinned),
    # and 20 times faster here (0.4 s against 6 s for a tiny tower); the export is checked against torch below.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            inputs,
            str(path),
            input_names=names,
            output_names=[output],
            dynamic_axes=axes,
            dynamo=False,
        )


def _quantize(fp32: Path, int8: Path, tower: nn.Module) -> None:
    """int8 weights (onnxruntime's per-channel dynamic quantisation) for the embedding tables and the attention input
    projections; the rest stays fp32.

    Measured on the Swahili adapters run: quantising every MatMul moves text embeddings to a mean cosine of 0.978
    with torch (the feed-forward projections' inputs have outliers that per-tensor activation scales lose), and
    every Conv of EfficientNet-Lite0 to 0.43; this choice keeps the mean cosine at 0.997 (docs/benchmarks.md).
    """
    try:
        attention = [
            f"/{name.replace('.', '/')}/" for name in module_names(tower, "int8 export", lambda f: f.attention)
        ]
    except TuningError:  # no transformer layer mlilt knows (a convolutional tower): nothing but tables
        attention = []
    graph = onnx.load(str(fp32), load_external_data=False).graph
    tables = {t.name for t in graph.initializer if len(t.dims) == 2}
    nodes = [
        n.name
        for n in graph.node
        if (n.op_type == "Gather" and n.input[0] in tables)
        or (n.op_type == "MatMul" and any(path in n.name for path in attention))
    ]
    if not nodes:
        shutil.copyfile(fp32, int8)  # nothing worth quantising: the int8 file is the fp32 one
        return
    logging.disable(logging.WARNING)  # onnxruntime's advice to pre-process a model first reads like an error
    try:
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True, nodes_to_quantize=nodes)
    finally:
        logging.disable(logging.NOTSET)


def _probe_pictures(size: int) -> list[Image.Image]:
    """A few pictures of different shapes and colours (with a transparent one), made here."""
    generator = np.random.default_rng(0)
    pictures = []
    for width, height in ((size, size), (size * 2, size), (size // 2 + 7, size + 31)):
        pixels = generator.integers(0, 255, (height, width, 3), dtype=np.uint8)
        pictures.append(Image.fromarray(pixels, "RGB"))
    icon = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    icon.paste((200, 30, 30, 255), (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    return pictures + [icon]


def export_onnx(source, out: Path, revision: str | None = None, int8: bool = True) -> dict:
    """Write the ONNX folder of ``source`` (a run folder, Hub id or loaded model) into ``out``.

    Returns:
        The measured agreement with the torch model (written into ``mlilt-onnx.json`` too).

    Raises:
        RunFolderError: ``out`` exists and is not empty.
        NotExportableError: The vision preprocessing cannot be expressed, or the export does not reproduce the
            model; nothing is kept.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise RunFolderError(f"{out} exists and is not empty; choose another folder")
    local = not isinstance(source, nn.Module) and Path(source).exists()
    model = source if isinstance(source, nn.Module) else load(source, revision=revision)
    model = model.cpu().eval()
    lang = read_adapter_config(Path(source)).get("lang") if local else None
    config = {
        "format_version": FORMAT_VERSION,
        "mlilt_version": __version__,
        "embed_dim": model.config.embed_dim,
        "text": {
            "prefix": model.text.prefix,
            "max_length": model.text.max_length,
            "pad_id": model.text.tokenizer.pad_token_id,
        },
        "image": preprocessing(model),
        "exported_from": {
            "text": model.text.name,
            "vision": model.vision.name,
            "text_method": model.config.text.method,
            "vision_method": model.config.vision.method,
            "lang": lang,
        },
    }
    with tempfile.TemporaryDirectory(prefix=".mlilt-onnx-", dir=out.parent if out.parent.exists() else None) as tmp:
        folder = Path(tmp)
        tokens = model.text.tokenize(PROBE_TEXTS[:2])
        _export(
            _TextSide(model),
            (tokens["input_ids"], tokens["attention_mask"]),
            folder / "text.onnx",
            ["input_ids", "attention_mask"],
            "text_embedding",
            {
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "text_embedding": {0: "batch"},
            },
        )
        crop = config["image"]["crop"]
        _export(
            _ImageSide(model),
            (torch.zeros(2, 3, *crop),),
            folder / "image.onnx",
            ["pixels"],
            "image_embedding",
            {"pixels": {0: "batch"}, "image_embedding": {0: "batch"}},
        )
        model.text.tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
        if int8:
            for side, tower in (("text", model.text), ("image", model.vision)):
                _quantize(folder / f"{side}.onnx", folder / f"{side}.int8.onnx", tower)
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        config["agreement"] = _agreement(model, folder, int8)
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        out.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            shutil.move(str(path), out / path.name)
    return config["agreement"]


def _agreement(model: DualEncoder, folder: Path, int8: bool) -> dict:
    """Cosine of the ONNX embeddings with the torch model's on probe texts and pictures; refuses a bad export."""
    pictures = _probe_pictures(max(OnnxModel(folder).config["image"]["crop"]))
    with torch.no_grad():
        expected = {"text": model.embed_texts(PROBE_TEXTS).numpy(), "image": model.embed_images(pictures).numpy()}
    agreement = {}
    for precision in ("fp32", "int8") if int8 else ("fp32",):
        runtime = OnnxModel(folder, int8=precision == "int8")
        got = {"text": runtime.embed_texts(PROBE_TEXTS), "image": runtime.embed_images(pictures)}
        for side in ("text", "image"):
            cosine = (got[side] * expected[side]).sum(1)
            agreement[f"{side}_{precision}"] = {"min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean())}
    bad = [
        k
        for k, v in agreement.items()
        if (v["min_cosine"] < FP32_MIN_COSINE if k.endswith("fp32") else v["mean_cosine"] < INT8_MEAN_COSINE)
    ]
    if bad:
        raise NotExportableError(
            f"the ONNX export does not reproduce the model ({', '.join(f'{k}: {agreement[k]}' for k in bad)}); "
            "nothing was kept"
        )
    return agreement
