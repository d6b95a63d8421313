"""``mlilt export``: an adapter as a sentence-transformers model (:mod:`mlilt.hub.export`) or as ONNX models that
serve without torch (:mod:`mlilt.hub.onnx_export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlilt.cli.options import add_threads, use_threads
from mlilt.errors import ConfigError
from mlilt.hub.export import export_sentence_transformers
from mlilt.hub.onnx_export import export_onnx
from mlilt.tuning.registry import get_method, method_names

EPILOG = """\
examples:
  mlilt export runs/sw-lora --sentence-transformers exports/sw-lora-st
  mlilt export runs/sw-adapters --onnx exports/sw-onnx       (every method, adapters included)
  mlilt export me/mlilt-sw --sentence-transformers exports/sw-st      (a Hub id works too)

then:
  from sentence_transformers import SentenceTransformer
  st = SentenceTransformer("exports/sw-lora-st")
  st.encode(["mbwa", "paka"])      # == mlilt.load("runs/sw-lora").embed_texts(["mbwa", "paka"])

  from mlilt.onnx_runtime import OnnxModel          # onnxruntime + tokenizers, no torch
  onnx = OnnxModel("exports/sw-onnx", int8=True)
  onnx.embed_texts(["mbwa"]), onnx.embed_images([PIL.Image.open("a.png")])
  mlilt demo --onnx exports/sw-onnx                 # the demo, served from the export

sentence-transformers: exportable methods are {mergeable} (trained changes merged into the base weights);
not {not_mergeable} (use --onnx or mlilt.load). Only the text side is exported; the export is reloaded and
checked against embed_texts (max difference 1e-5) before the command succeeds.

ONNX: text.onnx (tokens -> embedding) and image.onnx (pixels -> embedding), int8 copies (onnxruntime's
dynamic quantisation) unless --no-int8, tokenizer.json and mlilt-onnx.json (tokenising and picture
preprocessing). Kept only if the fp32 export matches the model (cosine >= 0.999 on probe texts and
pictures) and int8 stays close (mean cosine >= 0.99).
"""


def configure(p: argparse.ArgumentParser) -> None:
    names = method_names("text")
    p.description = (
        "Export a run's adapter for use outside mlilt: the text side as a sentence-transformers model (methods that "
        "merge into the base weights), or both sides as ONNX models (every method)."
    )
    p.epilog = EPILOG.format(
        mergeable=", ".join(n for n in names if get_method(n).merge),
        not_mergeable=", ".join(n for n in names if not get_method(n).merge),
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("run", help="run or adapter folder, or a Hub id (user/name)")
    p.add_argument(
        "--sentence-transformers",
        dest="st_out",
        type=Path,
        metavar="OUT",
        help="folder to write the sentence-transformers model into (new or empty)",
    )
    p.add_argument("--onnx", dest="onnx_out", type=Path, metavar="OUT", help="folder to write the ONNX models into")
    p.add_argument("--no-int8", action="store_true", help="with --onnx: no int8 copies")
    p.add_argument("--revision", help="branch, tag or commit, when RUN is a Hub id")
    add_threads(p)


def run(args: argparse.Namespace) -> int:
    if not (args.st_out or args.onnx_out):
        raise ConfigError("say what to export: --sentence-transformers OUT and/or --onnx OUT")
    use_threads(args)
    if args.st_out:
        out = export_sentence_transformers(args.run, args.st_out, revision=args.revision)
        print(f"wrote a sentence-transformers model to {out} (checked: same embeddings as mlilt's embed_texts)")
    if args.onnx_out:
        agreement = export_onnx(args.run, args.onnx_out, revision=args.revision, int8=not args.no_int8)
        checked = ", ".join(f"{k} mean cosine {v['mean_cosine']:.4f}" for k, v in agreement.items())
        print(f"wrote ONNX models to {args.onnx_out} (checked against the torch model: {checked})")
    return 0
