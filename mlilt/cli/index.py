"""``mlilt index``: build a gallery's search index once and save it for ``mlilt demo`` to load."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mlilt.cli.options import add_threads, use_threads
from mlilt.demo.gallery import emoji_gallery, emoji_names, folder_gallery
from mlilt.demo.index import BACKENDS
from mlilt.demo.saved_index import caption_queries, save_gallery_index
from mlilt.demo.search import adapter_lang, index_gallery, load_reference
from mlilt.hub.loading import load
from mlilt.threads import describe

EPILOG = """\
examples:
  mlilt index --images ~/photos --adapter runs/sw-adapters
  mlilt features --images ~/photos --shard 0/2 & mlilt features --images ~/photos --shard 1/2 & wait
  mlilt index --images ~/photos --adapter runs/sw-adapters --backend ivf
  mlilt demo --images ~/photos --adapter runs/sw-adapters      loads the saved index

The pictures' frozen features come from the feature cache (`mlilt features` fills it, in several processes
if you like); the index holds the adapter's picture embeddings (and its frozen reference's, when the run
has one). auto: exact search below 50,000 pictures, FAISS flat below 200,000, an approximate IVF index
with 8-bit codes from there (nprobe chosen for 97% of the exact top-10 on the language's CLDR names as
queries). The index is kept in the cache and used by `mlilt demo` while the folder lists the same pictures.
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Index a picture folder for a language adapter once and save the index for the demo."
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--images", type=Path, help="folder of pictures (default: the Emoji-CLDR pictures)")
    p.add_argument(
        "--adapter", action="append", required=True, metavar="RUN_OR_HUB_ID", help="run folder or Hub id (repeatable)"
    )
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="search backend (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads(p)


def run(args: argparse.Namespace) -> int:
    use_threads(args)
    gallery = folder_gallery(args.images) if args.images else emoji_gallery()
    print(f"mlilt index: gallery {gallery.root} ({len(gallery.paths):,} pictures); {describe()}")
    for source in args.adapter:
        model = load(source).eval()
        lang = adapter_lang(Path(source), model)
        queries = list(dict.fromkeys(emoji_names(lang).values()))
        for kind, m in (("adapted", model), ("base", load_reference(Path(source)))):
            if m is None:
                continue
            started = time.perf_counter()
            index, stats, shown = index_gallery(m, gallery, args.backend, progress=not args.quiet)
            index.build(progress=not args.quiet, queries=caption_queries(m, queries))
            folder = save_gallery_index(index, m, gallery, shown)
            recall = f"; recall@10 against exact search {index.measured_recall:.3f}" if index.measured_recall else ""
            print(
                f"mlilt index: {lang} {kind}: {len(index):,} pictures, {index.backend}{recall}, "
                f"{time.perf_counter() - started:.1f} s -> {folder}"
            )
            for path, why in stats.unreadable.items():
                print(f"mlilt index: skipped {path}: {why}")
    return 0
