"""Search latency of the demo: a text query = encode with the real text tower + top-k search.

For each gallery size (random normalised vectors stand in for picture embeddings; only the size
matters for search speed) and each backend (exact matrix product, FAISS ``IndexFlatIP``), it
measures the index build throughput and the per-query latency (median and p95) of

- encode + search: the offline multilingual-e5-small text tower, a random projection head (the
  head's size is what matters, not its values), then :meth:`mlilt.search.EmbeddingIndex.search`;
- search alone.

    python benchmarks/search_latency.py                       # 1k, 10k, 100k; 50 queries each
    python benchmarks/search_latency.py --sizes 1000 --queries 10 --json /tmp/latency.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mlilt.config import TowerConfig
from mlilt.demo.index import EmbeddingIndex, faiss_available
from mlilt.towers.registry import build_text_tower

from _common import write_json

ROOT = Path(__file__).resolve().parent.parent
QUERIES = [
    "mbwa",
    "paka mweusi",
    "samaki wa bluu",
    "gari jekundu",
    "ndizi",
    "jua",
    "moyo mwekundu",
    "Ajá",
    "Ẹja",
    "ውሻ",
    "kare",
    "inja",
    "red heart",
    "a cat",
    "mti",
    "ndege anayeruka",
]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench(encode, size: int, backend: str, queries: int, k: int, dim: int, seed: int = 0) -> dict:
    """Build one index of ``size`` random vectors and time ``queries`` text queries against it."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((size, dim)).astype(np.float32)
    start = time.perf_counter()
    index = EmbeddingIndex(dim, backend=backend)
    index.add(vectors)
    index.search(vectors[0], k)  # the first search builds the FAISS index: counted in the build
    build_s = time.perf_counter() - start
    total, search_only = [], []
    for i in range(queries + 3):
        text = QUERIES[i % len(QUERIES)]
        t0 = time.perf_counter()
        query = encode(text)
        t1 = time.perf_counter()
        index.search(query, k)
        t2 = time.perf_counter()
        if i >= 3:  # warm-up
            total.append((t2 - t0) * 1e3)
            search_only.append((t2 - t1) * 1e3)
    return {
        "size": size,
        "backend": backend,
        "build_s": build_s,
        "build_vectors_per_s": size / build_s,
        "query_ms_median": statistics.median(total),
        "query_ms_p95": percentile(total, 95),
        "search_ms_median": statistics.median(search_only),
        "search_ms_p95": percentile(search_only, 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated gallery sizes")
    parser.add_argument("--backends", default="exact,faiss", help="comma-separated: exact, faiss")
    parser.add_argument("--queries", type=int, default=50, help="timed queries per (size, backend)")
    parser.add_argument("--k", type=int, default=8, help="results per query")
    parser.add_argument("--dim", type=int, default=256, help="embedding size (the default recipe's embed_dim)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "search_latency.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tower = build_text_tower(TowerConfig("offline:multilingual-e5-small")).eval()
    head = torch.nn.Linear(tower.hidden_size, args.dim)

    @torch.no_grad()
    def encode(text: str) -> np.ndarray:
        batch = tower.tokenize([text])
        features = tower(batch["input_ids"], batch["attention_mask"])
        return torch.nn.functional.normalize(head(features), dim=-1)[0].numpy()

    backends = [b for b in args.backends.split(",") if b != "faiss" or faiss_available()]
    rows = [
        bench(encode, int(size), backend, args.queries, args.k, args.dim)
        for size in args.sizes.split(",")
        for backend in backends
    ]
    header = "| stored | backend | build (vectors/s) | query median (ms) | query p95 (ms) | search only median (ms) |"
    print(header + "\n|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['size']:,} | {r['backend']} | {r['build_vectors_per_s']:,.0f} | {r['query_ms_median']:.1f} | "
            f"{r['query_ms_p95']:.1f} | {r['search_ms_median']:.2f} |"
        )
    meta = {
        "text_tower": tower.name,
        "dim": args.dim,
        "k": args.k,
        "queries": args.queries,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    write_json(args.json, {"meta": meta, "rows": rows})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
