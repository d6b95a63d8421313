"""``mlilt export``: the text side of an adapter as a sentence-transformers model (:mod:`mlilt.hub.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlilt.hub.export import export_sentence_transformers
from mlilt.tuning.registry import get_method, method_names

EPILOG = """\
examples:
  mlilt export runs/sw-lora --sentence-transformers exports/sw-lora-st
  mlilt export me/mlilt-sw --sentence-transformers exports/sw-st      (a Hub id works too)

then:
  from sentence_transformers import SentenceTransformer
  st = SentenceTransformer("exports/sw-lora-st")
  st.encode(["mbwa", "paka"])      # == mlilt.load("runs/sw-lora").embed_texts(["mbwa", "paka"])

Exportable methods: {mergeable} (trained changes merged into the base weights). Not exportable:
{not_mergeable} (use mlilt.load). Only the text side is exported: pictures still need
mlilt.load(...).embed_images. The export is reloaded and checked against embed_texts (max difference
1e-5) before the command succeeds.
"""


def configure(p: argparse.ArgumentParser) -> None:
    names = method_names("text")
    p.description = (
        "Merge the trained weights of the text tower into a plain transformers encoder and write Transformer + "
        "Pooling + Dense (the text head) + Normalize as a sentence-transformers model folder."
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
        required=True,
        metavar="OUT",
        help="folder to write the sentence-transformers model into (new or empty)",
    )
    p.add_argument("--revision", help="branch, tag or commit, when RUN is a Hub id")


def run(args: argparse.Namespace) -> int:
    out = export_sentence_transformers(args.run, args.st_out, revision=args.revision)
    print(f"wrote a sentence-transformers model to {out} (checked: same embeddings as mlilt's embed_texts)")
    return 0
