"""mlilt at the sizes users bring: filling the feature store in parallel, training on a million captions, and
searching a million pictures. Each part runs on its own and writes ``benchmarks/results/scale-<part>.json``.

    python benchmarks/scale.py fill      # 10,000 generated pictures, the real EfficientNet-Lite0: 1 vs 2 processes,
                                         # then 2 processes killed half-way and run again
    python benchmarks/scale.py train     # the built-in Swahili set against 1,000,000 captions over 100,000 pictures
    python benchmarks/scale.py checks    # 5,000 photograph-sized pictures checked before training: first run, rerun
    python benchmarks/scale.py search    # 1,000,000 picture embeddings: approximate index against exact search

What is real and what is synthetic (the towers cannot reach these sizes on 2 CPU cores in a benchmark's time):

- fill: real pictures (generated PNGs, 96x96, all different), the real offline vision tower, the real store.
- train: the captions are real Swahili captions (the built-in set's CLDR names and keywords, drawn at random)
  in a real JSONL file read by ``mlilt adapt``; the pictures are real files (tiny generated PNGs: hashing and
  validating them is real), but their features are random vectors put into the store under the pictures'
  hashes (computing 100,000 EfficientNet features here would take half an hour). ``adapters`` trains the real
  e5 text tower; for the heads-only method (``frozen``) the text tower's forward is replaced by a cheap lookup
  (a million e5 passes would take over an hour), everything around it (spilling the features to disk, reading
  them by row) is real. Each run is ``mlilt adapt ... --max-steps N`` in a fresh process: peak RSS from its
  ``metrics.json``, pairs/s the median over its steps after the first 10 (60 steps for adapters, 1,500 for
  heads only, whose steps take milliseconds; the built-in set has 186 in its 6 epochs); the built-in and the
  large set take turns (``--repeats``, default 3) and each row is the median of its runs.
- search: the vectors are the real Swahili adapters run's picture embeddings (all 1,538 of its pictures), each
  copied many times with noise (same spread as the real ones around their nearest neighbour), so the collection has the
  cluster structure of real embeddings; the queries are the real model's embeddings of real Swahili
  captions, encoded per query as the demo does (that time is in the latency).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mlilt.adapt import run_split
from mlilt.cache import cache_root, file_sha256
from mlilt.config import RunConfig
from mlilt.data.emoji_cldr import load_emoji_cldr
from mlilt.data.picture_checks import PictureChecks
from mlilt.data.records import CaptionRecord
from mlilt.data.validate import validate_records
from mlilt.demo.index import EmbeddingIndex, normalise
from mlilt.feature_files import RowFile
from mlilt.features import FeatureStore
from mlilt.hub.loading import load
from mlilt.towers.registry import build_vision_tower

from _common import machine_meta, warn_if_busy, write_json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _generate_pictures(folder: Path, count: int, size: int, seed: int = 0) -> list[str]:
    """``count`` different PNG pictures (random blocks of colour) of ``size`` pixels a side."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"p{i:07d}.png"
        if not path.exists():
            blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            Image.fromarray(blocks).resize((size, size), Image.NEAREST).save(path)
        paths.append(str(path))
    return paths


# fill ------------------------------------------------------------------------------------------------------------

FILL_WORKER = """
import sys, time, torch
from pathlib import Path
from mlilt.config import RunConfig
from mlilt.features import FeatureStore, fill
from mlilt.towers.registry import build_vision_tower
torch.set_num_threads(1)
root, shard, listing = sys.argv[1], sys.argv[2], sys.argv[3]
paths = open(listing).read().split()
tower = build_vision_tower(RunConfig().model.vision)
store = FeatureStore(tower, root=Path(root))
started = time.perf_counter()
stats = fill(tower, paths, store=store, shard=tuple(map(int, shard.split("/"))) if shard != "-" else None,
             progress=False)
print(stats.misses, time.perf_counter() - started, flush=True)
"""


def _stored_rows(folder: Path) -> int:
    total = 0
    for path in folder.glob("*.safetensors"):
        try:
            total += RowFile.open(path).rows
        except (OSError, ValueError):
            pass
    return total


def _fill(root: Path, listing: Path, shards: list[str]) -> tuple[float, list[int]]:
    started = time.perf_counter()
    workers = [
        subprocess.Popen([sys.executable, "-c", FILL_WORKER, str(root), s, str(listing)], stdout=subprocess.PIPE)
        for s in shards
    ]
    counts = [int(w.communicate()[0].split()[0]) for w in workers]
    return time.perf_counter() - started, counts


def part_fill(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = _generate_pictures(tmp / "pictures", args.pictures, 96)
        listing = tmp / "paths.txt"
        listing.write_text("\n".join(paths))
        folder = FeatureStore(build_vision_tower(RunConfig().model.vision), root=tmp / "one").folder.name
        one_s, _ = _fill(tmp / "one", listing, ["-"])
        print(f"1 process, 1 thread: {one_s:.1f} s ({args.pictures / one_s:.1f} pictures/s)", flush=True)
        two_s, counts = _fill(tmp / "two", listing, ["0/2", "1/2"])
        print(f"2 processes, 1 thread each: {two_s:.1f} s ({one_s / two_s:.2f}x faster); {counts}", flush=True)

        # killed half-way: what was stored survives, the rerun computes exactly the rest
        root = tmp / "killed"
        (root / folder).mkdir(parents=True)
        workers = [
            subprocess.Popen([sys.executable, "-c", FILL_WORKER, str(root), s, str(listing)], stdout=subprocess.PIPE)
            for s in ("0/2", "1/2")
        ]
        while _stored_rows(root / folder) < args.pictures // 2:
            time.sleep(0.2)
        for worker in workers:
            worker.kill()
            worker.wait()
        stored = _stored_rows(root / folder)
        rerun_s, rerun_counts = _fill(root, listing, ["0/2", "1/2"])
        recomputed = sum(rerun_counts) - (args.pictures - stored)
        print(
            f"killed with {stored} of {args.pictures} stored; the rerun computed {sum(rerun_counts)} "
            f"(= {args.pictures} - {stored}: {recomputed} recomputed) in {rerun_s:.1f} s",
            flush=True,
        )
    return {
        "pictures": args.pictures,
        "one_process_seconds": one_s,
        "two_processes_seconds": two_s,
        "speedup": one_s / two_s,
        "killed_with_stored": stored,
        "rerun_computed": sum(rerun_counts),
        "recomputed_after_kill": recomputed,
    }


# train -----------------------------------------------------------------------------------------------------------

TRAIN_WORKER = """
import sys, torch
from mlilt.cli.main import main
if sys.argv[1] == "cheap-text":  # a lookup instead of e5's forward: synthetic text features, same pipeline
    from mlilt.towers.text import TextTower
    weights = {}
    def cheap(self, input_ids, attention_mask):
        if "table" not in weights:
            generator = torch.Generator().manual_seed(0)
            weights["table"] = torch.randn(len(self.tokenizer) + 8, self.hidden_size, generator=generator)
        return weights["table"][input_ids].mean(1)
    TextTower.forward = cheap
sys.exit(main(sys.argv[2:]))
"""


def _captions_file(path: Path, pictures: list[str], captions: int, seed: int = 0) -> None:
    """``captions`` real Swahili captions (the built-in set's names and keywords, drawn at random: the same
    lengths, so a step costs what it costs on the built-in set) over ``pictures``, as a JSONL file."""
    words = [str(r.caption) for r in load_emoji_cldr("sw")]
    rng = random.Random(seed)
    splits = ["train" if n % 20 else ("val" if n % 40 else "test") for n in range(len(pictures))]
    train = splits.count("train")
    share, extra = divmod(captions - (len(pictures) - train), train)  # every val / test picture has one caption
    with open(path, "w", encoding="utf-8") as handle:
        seen_train = 0
        for picture, split in zip(pictures, splits):
            count = 1
            if split == "train":
                count, seen_train = share + (seen_train < extra), seen_train + 1
            for _ in range(count):
                caption = rng.choice(words)
                handle.write(json.dumps({"image": picture, "caption": caption, "lang": "sw", "split": split}) + "\n")


def _inject_features(paths: list[str], seed: int = 0) -> None:
    """Random features for ``paths`` in the real vision tower's store (what a fill would have computed)."""
    tower = build_vision_tower(RunConfig().model.vision)
    store = FeatureStore(tower)
    hashes = [h for h in (file_sha256(p) for p in paths) if h not in store]
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(hashes), 4096):
        block = hashes[start : start + 4096]
        store.add(block, torch.randn(len(block), tower.num_features, generator=generator))
    store.merge(at_shards=1)


def _private_cache(folder: Path) -> None:
    """A cache of this benchmark's own (MLILT_CACHE, inherited by the runs) that borrows the converted towers and
    rendered pictures of the user's cache and copies its frozen features (a few MB)."""
    real = cache_root()
    folder.mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name == "features":
            shutil.copytree(entry, folder / "features", ignore=shutil.ignore_patterns("*.lock"))
        elif entry.name not in ("tokens", "spill", "indexes"):
            (folder / entry.name).symlink_to(entry)
    os.environ["MLILT_CACHE"] = str(folder)


def _train_run(out: Path, method: str, data: list[str], steps: int, cheap_text: bool) -> dict:
    command = [
        sys.executable,
        "-c",
        TRAIN_WORKER,
        "cheap-text" if cheap_text else "-",
        "adapt",
        "--lang",
        "sw",
        *data,
        "--method",
        method,
        "--head-warmup-epochs",
        "0",
        "--no-reference",
        "--max-steps",
        str(steps),
        "--out",
        str(out),
        "--quiet",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command[4:])} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    rates = [json.loads(line)["pairs_per_s"] for line in (out / "metrics.jsonl").read_text().splitlines()][10:]
    return {
        "peak_rss_mb": metrics["peak_rss_mb"],
        "pairs_per_s": statistics.median(rates),
        "train_captions": metrics["splits"]["train"] if "splits" in metrics else None,
        "command_seconds": time.perf_counter() - started,
    }


def part_train(args) -> dict:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _private_cache(tmp / "cache")  # the synthetic features and token ids never reach the user's cache
        started = time.perf_counter()
        pictures = _generate_pictures(tmp / "pictures", args.train_pictures, 16)
        _captions_file(tmp / "captions.jsonl", pictures, args.captions)
        _inject_features(pictures)
        made = time.perf_counter() - started
        print(f"made {args.captions:,} captions over {args.train_pictures:,} pictures in {made:.0f} s", flush=True)
        for method in args.methods.split(","):
            cheap = method == "frozen"
            runs = {"built-in": [], "large": []}
            for repeat in range(args.repeats):  # the two sets take turns, so a slow spell hits both
                for name, data in (("built-in", []), ("large", ["--data", str(tmp / "captions.jsonl")])):
                    key = f"{method} {name}"
                    steps = args.heads_steps if method == "frozen" else args.steps
                    runs[name].append(
                        _train_run(tmp / f"{key}-{repeat}".replace(" ", "-"), method, data, steps, cheap)
                    )
                    print(f"{key:20s} {runs[name][-1]}", flush=True)
            for name, results in runs.items():
                rows[f"{method} {name}"] = {
                    **{
                        k: statistics.median(r[k] for r in results)
                        for k in ("peak_rss_mb", "pairs_per_s", "command_seconds")
                    },
                    "train_captions": results[0]["train_captions"],
                    "runs": results,
                }
            # the first run on the large set tokenised the captions; later ones read the token ids from the cache
            rows[f"{method} large"]["first_command_seconds"] = runs["large"][0]["command_seconds"]
    for method in args.methods.split(","):
        small, large = rows[f"{method} built-in"], rows[f"{method} large"]
        large["rss_vs_built_in"] = large["peak_rss_mb"] / small["peak_rss_mb"]
        large["throughput_vs_built_in"] = large["pairs_per_s"] / small["pairs_per_s"]
        print(
            f"{method}: peak RSS {large['rss_vs_built_in']:.2f}x, throughput {large['throughput_vs_built_in']:.2f}x "
            "the built-in set's"
        )
    return {
        "captions": args.captions,
        "pictures": args.train_pictures,
        "steps": args.steps,
        "heads_steps": args.heads_steps,
        "repeats": args.repeats,
        "rows": rows,
    }


# checks ----------------------------------------------------------------------------------------------------------


def part_checks(args) -> dict:
    """Checking photograph-sized pictures before training: a first run decodes each, a rerun none."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp, rng = Path(tmp), np.random.default_rng(0)
        records = []
        for number in range(args.photos):
            path = tmp / f"photo{number:06d}.jpg"
            small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)  # smooth enough to compress like a photo
            Image.fromarray(small).resize((640, 480), Image.BILINEAR).save(path, quality=90)
            records.append(CaptionRecord(str(path), f"picha {number}", path.name, "train"))
        megabytes = sum(Path(r.image).stat().st_size for r in records) / 2**20
        runs = {}
        for name in ("first run", "rerun"):
            started = time.perf_counter()
            good, _ = validate_records(records, picture_checks=PictureChecks(tmp / "checks.sqlite"))
            runs[name] = time.perf_counter() - started
            assert len(good) == len(records)
            print(f"{name}: {runs[name]:.2f} s for {len(records):,} pictures of 640x480 ({megabytes:.0f} MB)")
    return {
        "pictures": args.photos,
        "megabytes": megabytes,
        "first_run_seconds": runs["first run"],
        "rerun_seconds": runs["rerun"],
        "per_100k_pictures_first_run_seconds": runs["first run"] / args.photos * 100_000,
        "per_100k_pictures_rerun_seconds": runs["rerun"] / args.photos * 100_000,
    }


# search ----------------------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def part_search(args) -> dict:
    model = load(args.run).eval()
    captions, picture_paths, _ = run_split(args.run, model, "test")  # queries: the test captions
    for split in ("train", "val"):  # every picture of the run, for the collection's structure
        picture_paths += run_split(args.run, model, split)[1]
    with torch.no_grad():
        real = normalise(model.embed_images([model.vision.open(p) for p in picture_paths]).numpy())
    nearest = np.sort(real @ real.T, axis=1)[:, -2]  # cosine to the nearest other picture
    spread = float(np.sqrt(np.mean(2 - 2 * nearest)) / np.sqrt(real.shape[1]))
    rng = np.random.default_rng(0)
    vectors = np.empty((args.vectors, real.shape[1]), dtype=np.float32)
    for start in range(0, args.vectors, 100_000):
        count = min(100_000, args.vectors - start)
        centres = real[rng.integers(0, len(real), count)]
        vectors[start : start + count] = normalise(centres + rng.normal(0, spread, centres.shape).astype(np.float32))
    queries = captions[: args.queries]
    with torch.no_grad():
        query_vectors = normalise(model.embed_texts(queries).numpy())
    exact = np.argsort(-(query_vectors @ vectors.T), axis=1)[:, :10]

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        index = EmbeddingIndex(real.shape[1], backend="ivf")
        index.add(vectors)
        started = time.perf_counter()
        index.build(progress=True, queries=query_vectors)
        build_s = time.perf_counter() - started
        index.save(Path(tmp) / "index")
        del index
        probe = (
            "import sys, time, os; sys.path.insert(0, %r)\n"
            "from mlilt.demo.index import EmbeddingIndex\n"
            "def rss(): return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20\n"
            "before = rss(); t = time.perf_counter(); i = EmbeddingIndex.load(sys.argv[1])\n"
            "print(time.perf_counter() - t, rss() - before)" % str(ROOT)
        )
        out = subprocess.run([sys.executable, "-c", probe, str(Path(tmp) / "index")], capture_output=True, text=True)
        reload_s, index_mb = (float(x) for x in out.stdout.split())
        index = EmbeddingIndex.load(Path(tmp) / "index")
        found = index.search(query_vectors, 10)[0]
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))
        latencies, search_only = [], []
        for query in queries:
            tick = time.perf_counter()
            with torch.no_grad():
                vector = model.embed_texts([query])[0].numpy()
            middle = time.perf_counter()
            index.search(vector, 8)
            latencies.append(time.perf_counter() - tick)
            search_only.append(time.perf_counter() - middle)
        results = {
            "vectors": args.vectors,
            "real_pictures_copied": len(real),
            "lists": index.lists,
            "nprobe": index.nprobe,
            "build_seconds": build_s,
            "reload_seconds": reload_s,
            "index_resident_mb": index_mb,
            "file_mb": (Path(tmp) / "index" / "index.faiss").stat().st_size / 2**20,
            "recall_at_10_vs_exact": recall,
            "recall_measured_at_build": index.measured_recall,
            "query_median_ms": 1e3 * statistics.median(latencies),
            "query_p90_ms": 1e3 * float(np.percentile(latencies, 90)),
            "search_only_median_ms": 1e3 * statistics.median(search_only),
            "queries": len(queries),
            "noise_per_dimension": spread,
        }
    for key, value in results.items():
        print(f"{key:28s} {value:.3f}" if isinstance(value, float) else f"{key:28s} {value}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("fill", "train", "checks", "search"))
    parser.add_argument("--pictures", type=int, default=10_000, help="fill: generated pictures")
    parser.add_argument("--captions", type=int, default=1_000_000, help="train: captions of the large set")
    parser.add_argument("--train-pictures", type=int, default=100_000, help="train: pictures of the large set")
    parser.add_argument("--steps", type=int, default=60, help="train: steps per adapters run")
    parser.add_argument(
        "--heads-steps",
        type=int,
        default=1500,
        help="train: steps per heads-only run (a step takes milliseconds: enough of them for the figure a long epoch "
        "gives, past the first seconds while the spilled text features are still being written out)",
    )
    parser.add_argument("--methods", default="adapters,frozen", help="train: methods to run, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="train: runs of each set, taking turns (medians)")
    parser.add_argument("--photos", type=int, default=5_000, help="checks: generated 640x480 JPEG pictures")
    parser.add_argument("--vectors", type=int, default=1_000_000, help="search: picture embeddings")
    parser.add_argument("--queries", type=int, default=200, help="search: text queries")
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "sw-adapters", help="search: a trained run")
    args = parser.parse_args()
    load_before = warn_if_busy()
    result = {"fill": part_fill, "train": part_train, "checks": part_checks, "search": part_search}[args.part](args)
    result["machine"] = machine_meta(load_before)
    result["peak_rss_mb_of_this_script"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_json(RESULTS / f"scale-{args.part}.json", result)
    print(f"wrote {RESULTS / f'scale-{args.part}.json'}")


if __name__ == "__main__":
    main()
