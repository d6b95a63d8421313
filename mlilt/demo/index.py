"""Nearest-neighbour search over L2-normalised embeddings: exact, FAISS flat, or approximate for huge galleries.

Every backend ranks by inner product of normalised vectors (= cosine similarity).

- ``exact``: a matrix product over every stored vector (NumPy).
- ``faiss``: FAISS ``IndexFlatIP``, exact as well, with BLAS kernels that are faster on large collections.
- ``ivf``: approximate: FAISS ``IVF<n>,SQ8``: the vectors are grouped around ``n`` centroids (k-means on a
  sample) and stored as 8-bit codes (a quarter of float32: 1 million 256-d vectors in 256 MB); a query scans
  the ``nprobe`` groups nearest to it. ``nprobe`` is chosen when the index is built: the smallest that finds
  :data:`TARGET_RECALL` of the exact top-10 on a sample of queries (recorded with the index, and measured on real
  queries in docs/benchmarks.md).

``auto`` picks ``exact`` below :data:`FAISS_THRESHOLD` vectors, ``faiss`` below :data:`IVF_THRESHOLD` and
``ivf`` from there (FAISS backends only when ``faiss-cpu`` is installed). An index saves to a folder and loads
back as it was (:meth:`EmbeddingIndex.save`, :meth:`EmbeddingIndex.load`).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mlilt.cache import save_array, write_atomically
from mlilt.errors import ConfigError, MissingPackageError, NotFoundError, first_line
from mlilt.version import __version__

BACKENDS = ("exact", "faiss", "ivf", "auto")
FAISS_THRESHOLD = 50_000
IVF_THRESHOLD = 200_000
TARGET_RECALL = 0.97  # of the exact top-10, when nprobe is chosen at build time
NPROBES = (8, 16, 32, 64, 128, 256)
TRAIN_PER_LIST = 64  # k-means sample: this many vectors per list (FAISS warns below 39)
ADD_BLOCK = 65_536
INDEX_FILE, IDS_FILE, META_FILE, VECTORS_FILE = "index.faiss", "ids.json", "index.json", "vectors.npy"


def faiss_available() -> bool:
    """Whether ``faiss`` (the ``faiss-cpu`` package) imports."""
    try:
        import faiss  # noqa: F401  (optional: the demo extra's faiss-cpu)
    except ImportError:
        return False
    return True


def _faiss():
    try:
        import faiss  # optional heavy dependency (the demo extra): only for large galleries
    except ImportError:
        raise MissingPackageError("this search backend needs the faiss-cpu package: pip install faiss-cpu") from None
    return faiss


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as contiguous float32 (zero rows stay zero)."""
    vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


def ivf_lists(count: int) -> int:
    """Lists of an IVF index over ``count`` vectors: about 4 sqrt(count), as FAISS's guidelines suggest, and no
    more than k-means can place with 39 vectors each (FAISS's minimum)."""
    return int(max(1, min(65_536, 4 * math.sqrt(count), count // 39)))


class EmbeddingIndex:
    """A collection of embeddings with top-k cosine search.

    Args:
        dim: Embedding size.
        backend: ``exact``, ``faiss``, ``ivf`` or ``auto`` (see the module docstring).
        threshold: Size from which ``auto`` uses FAISS.

    Example:
        >>> index = EmbeddingIndex(4)
        >>> index.add(np.eye(4), ids=["a", "b", "c", "d"])
        >>> index.search(np.array([1.0, 0.1, 0, 0]), k=2)[0]
        ['a', 'b']
    """

    def __init__(self, dim: int, backend: str = "auto", threshold: int = FAISS_THRESHOLD):
        if backend not in BACKENDS:
            raise ConfigError(f"unknown search backend {backend!r}; expected one of {BACKENDS}")
        if backend in ("faiss", "ivf") and not faiss_available():
            raise MissingPackageError(f"the {backend} backend needs the faiss-cpu package: pip install faiss-cpu")
        self.dim, self.requested, self.threshold = dim, backend, threshold
        self.ids: list[Hashable] = []
        self._vectors = np.empty((0, dim), dtype=np.float32)  # kept until an approximate index is built
        self._faiss = None  # built on first FAISS search, extended by later adds
        self._approximate = False  # an ivf index keeps only its codes, not the vectors
        self.nprobe: int | None = None
        self.measured_recall: float | None = None
        self.meta: dict = {}  # what a saved index recorded about itself (see save)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lists(self) -> int | None:
        """The lists of an approximate index (None for the exact backends)."""
        return int(self._faiss.nlist) if self._approximate else None

    @property
    def backend(self) -> str:
        """The backend a search uses now (``auto`` resolved by the current size)."""
        if self.requested != "auto":
            return self.requested
        if len(self) < self.threshold or not faiss_available():
            return "exact"
        return "faiss" if len(self) < IVF_THRESHOLD else "ivf"

    def add(self, vectors: np.ndarray, ids: Sequence[Hashable] | None = None) -> None:
        """Add rows (normalised here); ``ids`` default to their positions in the index."""
        vectors = normalise(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have size {vectors.shape[1]}, the index holds size {self.dim}")
        ids = list(range(len(self), len(self) + len(vectors))) if ids is None else list(ids)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if self._faiss is not None:
            self._faiss.add(vectors)
        if not self._approximate:
            self._vectors = np.concatenate([self._vectors, vectors]) if len(self._vectors) else vectors
        self.ids.extend(ids)

    def build(self, progress: bool = False, queries: np.ndarray | None = None) -> None:
        """Build the FAISS index now (otherwise the first search does); for ``ivf``, train it and choose nprobe.

        Args:
            progress: Say what is being done, with a progress bar.
            queries: Typical queries (e.g. caption embeddings) to choose nprobe with; default stored vectors
                moved a little.
        """
        if self.backend == "exact" or self._faiss is not None:
            return
        faiss = _faiss()
        if self.backend == "faiss":
            self._faiss = faiss.IndexFlatIP(self.dim)
            self._faiss.add(self._vectors)
            return
        lists = ivf_lists(len(self))
        index = faiss.index_factory(self.dim, f"IVF{lists},SQ8", faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(len(self), min(len(self), TRAIN_PER_LIST * lists), replace=False)
        if progress:
            print(f"mlilt: training {lists} lists on {len(sample):,} vectors ...", file=sys.stderr, flush=True)
        index.train(self._vectors[np.sort(sample)])
        for start in tqdm(
            range(0, len(self), ADD_BLOCK), desc="adding to the index", unit="block", disable=not progress
        ):
            index.add(self._vectors[start : start + ADD_BLOCK])
        self._faiss, self._approximate = index, True
        self.nprobe, self.measured_recall = self._choose_nprobe(index, queries)
        self._vectors = np.empty((0, self.dim), dtype=np.float32)

    def _choose_nprobe(self, index, queries: np.ndarray | None, count: int = 200, k: int = 10) -> tuple[int, float]:
        """The smallest nprobe whose top-``k`` holds :data:`TARGET_RECALL` of the exact top-``k`` for ``queries``."""
        rng = np.random.default_rng(1)
        if queries is None:  # stored vectors moved a little: a query is never exactly a stored picture
            picked = self._vectors[rng.choice(len(self), min(count, len(self)), replace=False)]
            queries = picked + rng.normal(0, 0.5 / math.sqrt(self.dim), picked.shape).astype(np.float32)
        probes = normalise(queries[:count])
        exact = np.argsort(-(probes @ self._vectors.T), axis=1)[:, :k]
        for nprobe in NPROBES:
            index.nprobe = nprobe
            _, found = index.search(probes, k)
            recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact)]))
            if recall >= TARGET_RECALL:
                break
        return nprobe, recall

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[list, np.ndarray]:
        """The ``k`` nearest stored vectors of each query, best first.

        Args:
            queries: One query vector (``dim``) or several (``n x dim``); normalised here.
            k: Results per query; fewer when the index holds fewer vectors.

        Returns:
            ``(ids, scores)``: for a single query a list of ids and a 1-D array of cosine scores,
            for several a list of such lists and an ``n x k`` array.

        Raises:
            ValueError: The index is empty, ``k < 1``, or the query size does not match.
        """
        if not len(self):
            raise ValueError("the index is empty: add embeddings before searching")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        single = np.ndim(queries) == 1
        queries = normalise(np.atleast_2d(queries))
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have size {queries.shape[1]}, the index holds size {self.dim}")
        k = min(k, len(self))
        if self.backend == "exact":
            positions, scores = self._search_exact(queries, k)
        else:
            self.build()
            scores, positions = self._faiss.search(queries, k)
        ids = [[self.ids[p] for p in row if p >= 0] for row in positions]
        return (ids[0], scores[0][: len(ids[0])]) if single else (ids, scores)

    def _search_exact(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sims = queries @ self._vectors.T
        if k < sims.shape[1]:
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)

    def save(self, folder: Path, about: dict | None = None) -> None:
        """Write the index into ``folder`` (made if needed; each file replaced atomically), with ``about``
        (what it indexes: model, gallery) recorded beside it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.build()
        meta = {
            "mlilt_version": __version__,
            "backend": self.backend,
            "dim": self.dim,
            "count": len(self),
            "nprobe": self.nprobe,
            "measured_recall_at_10": self.measured_recall,
            "about": about or {},
        }
        if self._faiss is not None:
            write_atomically(folder / INDEX_FILE, lambda tmp: _faiss().write_index(self._faiss, str(tmp)))
        else:
            write_atomically(folder / VECTORS_FILE, lambda tmp: save_array(tmp, self._vectors))
        write_atomically(folder / IDS_FILE, lambda tmp: tmp.write_text(json.dumps(self.ids), encoding="utf-8"))
        write_atomically(folder / META_FILE, lambda tmp: tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8"))

    @classmethod
    def load(cls, folder: Path) -> EmbeddingIndex:
        """An index saved by :meth:`save`.

        Raises:
            NotFoundError: ``folder`` holds no complete saved index.
        """
        folder = Path(folder)
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            ids = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise NotFoundError(f"no saved index in {folder} ({err})") from None
        index = cls(meta["dim"], backend=meta["backend"])
        index.ids, index.nprobe, index.measured_recall = ids, meta["nprobe"], meta["measured_recall_at_10"]
        index.meta = meta
        try:
            if (folder / INDEX_FILE).is_file():
                index._faiss = _faiss().read_index(str(folder / INDEX_FILE))
                index._approximate = meta["backend"] == "ivf"
                if index.nprobe:
                    index._faiss.nprobe = index.nprobe
                stored = index._faiss.ntotal
            else:
                index._vectors = np.load(folder / VECTORS_FILE)
                stored = len(index._vectors)
        except (RuntimeError, OSError, ValueError) as err:  # FAISS raises RuntimeError for a damaged file
            raise NotFoundError(f"the saved index in {folder} cannot be read ({first_line(err)})") from None
        if stored != len(ids):
            raise NotFoundError(f"the saved index in {folder} is incomplete ({stored} vectors, {len(ids)} ids)")
        return index
