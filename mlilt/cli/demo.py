"""``mlilt demo``: cross-lingual image search in the browser (:mod:`mlilt.demo`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlilt.cli.options import add_threads, use_threads
from mlilt.constants import ADAPTER_CONFIG_NAME
from mlilt.demo.gallery import emoji_gallery, folder_gallery
from mlilt.demo.index import BACKENDS
from mlilt.demo.search import load_language, load_onnx_language
from mlilt.demo.ui import build_demo, launch
from mlilt.errors import NotFoundError


def default_adapters(runs: Path = Path("runs")) -> list[str]:
    """Every run folder under ``runs/`` that holds an adapter."""
    return sorted(str(p.parent) for p in runs.glob(f"*/{ADAPTER_CONFIG_NAME}"))


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Search a gallery (Emoji-CLDR pictures, or --images DIR) by text in any language or by a picture, with one "
        "or several language adapters; compare adapted against the frozen reference."
    )
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="RUN_OR_HUB_ID",
        help="run/adapter folder or Hub id, repeatable; LANG=PATH names the language (default: every run in runs/)",
    )
    p.add_argument(
        "--onnx",
        action="append",
        default=[],
        metavar="EXPORT",
        help="serve from an `mlilt export --onnx` folder instead (repeatable; no torch at query time)",
    )
    p.add_argument("--int8", action="store_true", help="with --onnx: the int8 models")
    p.add_argument("--images", type=Path, help="folder of pictures to search (default: the Emoji-CLDR pictures)")
    p.add_argument(
        "--index",
        choices=BACKENDS,
        default="auto",
        help="search backend; auto = a saved index (mlilt index) if there is one, else exact below 50,000 pictures, "
        "FAISS flat below 200,000, approximate (IVF) from there",
    )
    p.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads(p)


def run(args: argparse.Namespace) -> int:
    specs = args.adapter or ([] if args.onnx else default_adapters())
    if not specs and not args.onnx:
        raise NotFoundError("no adapter: pass --adapter RUN_FOLDER, or train one first (mlilt adapt --lang sw)")
    use_threads(args)
    gallery = folder_gallery(args.images) if args.images else emoji_gallery()
    print(f"mlilt demo: gallery {gallery.root} ({len(gallery.paths)} pictures)", file=sys.stderr)
    languages = [load_language(s, gallery, args.index, progress=not args.quiet) for s in specs]
    languages += [
        load_onnx_language(folder, gallery, args.int8, args.index, progress=not args.quiet) for folder in args.onnx
    ]
    launch(build_demo(languages), host=args.host, port=args.port, share=args.share)
    return 0
