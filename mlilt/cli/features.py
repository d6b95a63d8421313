"""``mlilt features``: fill the frozen-feature cache ahead of training or the demo, in one process or several."""

from __future__ import annotations

import argparse
import re
import sys

from mlilt.cli.options import add_threads, use_threads
from mlilt.config import load_run_config
from mlilt.data.prepare import picture_paths
from mlilt.data.sources import load_records
from mlilt.demo.gallery import folder_gallery
from mlilt.errors import ConfigError
from mlilt.features import FeatureStore, fill
from mlilt.threads import describe
from mlilt.towers.registry import build_vision_tower

EPILOG = """\
examples:
  mlilt features --images ~/photos                     the demo's gallery, before `mlilt index`
  mlilt features --data captions.jsonl --lang sw       a caption set's pictures, before `mlilt adapt`
  for i in 0 1 2 3; do mlilt features --images ~/photos --shard $i/4 --threads 1 & done; wait
  mlilt features --images ~/photos                     after the shares: merges them (computes what is left)

Features are keyed by the tower's weights and each picture's content, so `mlilt adapt`, `mlilt eval`,
`mlilt index` and `mlilt demo` with the same vision tower find them. A fill that is killed keeps every
finished batch of 64 pictures: run the same command again to go on. Shares are merged into large files
the next time the cache is used by one process alone.
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Compute the frozen vision tower's features of many pictures once and keep them in the feature cache; "
        "several processes (or machines sharing the cache folder) can each fill a share."
    )
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--images", help="every picture under this folder")
    what.add_argument("--data", help="the pictures of a caption source (emoji-cldr, a caption file, ...)")
    p.add_argument("--lang", help="with --data: the language to read")
    p.add_argument("--config", default="default", help="recipe naming the vision tower and views (default: default)")
    p.add_argument("--vision", help="vision tower (default: the recipe's)")
    p.add_argument("--vision-weights", help="local weights file of the vision tower")
    p.add_argument("--shard", help="I/N: fill only this process's share, one of N (I from 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads(p)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)``, checked."""
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise ConfigError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return int(match.group(1)), int(match.group(2))


def run(args: argparse.Namespace) -> int:
    shard = parse_shard(args.shard)
    overrides = {"model.vision.name": args.vision, "model.vision.weights": args.vision_weights}
    if args.lang:
        overrides["data.lang"] = args.lang
    cfg = load_run_config(args.config, overrides)
    use_threads(args)
    if args.images:
        paths = folder_gallery(args.images).paths
    else:
        paths = picture_paths(load_records(args.data, cfg.data.lang))
    tower = build_vision_tower(cfg.model.vision)
    print(f"mlilt features: {len(paths):,} pictures; {describe()}")
    for view in cfg.model.image_views:
        store = FeatureStore(tower, view)
        stats = fill(tower, paths, view, store, shard=shard, progress=not args.quiet, skip_unreadable=True)
        merged = 0 if shard else store.merge(at_shards=1)
        share = f" (share {shard[0] + 1} of {shard[1]})" if shard else ""
        print(f"mlilt features: {view}{share}: {stats}; {len(store):,} pictures in {store.folder}")
        if merged:
            print(f"mlilt features: merged {merged} shards into packs")
        for path, why in stats.unreadable.items():
            print(f"mlilt features: skipped {path}: {why}", file=sys.stderr)
        store.close()
    return 0
