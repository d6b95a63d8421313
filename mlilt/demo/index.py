"""Nearest-neighbour search over L2-normalised embeddings: exact matrix search, or FAISS for large collections.

Both backends rank by inner product of normalised vectors (= cosine similarity) and return the same
results on the same data: the FAISS backend uses ``IndexFlatIP``, an exact index whose BLAS kernels
are faster on large collections. ``auto`` picks FAISS from :data:`FAISS_THRESHOLD` vectors on (when
``faiss-cpu`` is installed) and the plain matrix product below it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from mlilt.errors import ConfigError, MissingPackageError

BACKENDS = ("exact", "faiss", "auto")
FAISS_THRESHOLD = 50_000


def faiss_available() -> bool:
    """Whether ``faiss`` (the ``faiss-cpu`` package) imports."""
    try:
        import faiss  # noqa: F401  (optional: the demo extra's faiss-cpu)
    except ImportError:
        return False
    return True


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as contiguous float32 (zero rows stay zero)."""
    vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


class EmbeddingIndex:
    """A growing collection of embeddings with top-k cosine search.

    Args:
        dim: Embedding size.
        backend: ``exact`` (matrix product), ``faiss`` (``IndexFlatIP``) or ``auto`` (FAISS from
            ``threshold`` vectors on, if installed).
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
        if backend == "faiss" and not faiss_available():
            raise MissingPackageError("the faiss backend needs the faiss-cpu package: pip install faiss-cpu")
        self.dim, self.requested, self.threshold = dim, backend, threshold
        self.ids: list[Hashable] = []
        self._vectors = np.empty((0, dim), dtype=np.float32)
        self._faiss = None  # built on first FAISS search, extended by later adds

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def backend(self) -> str:
        """The backend a search uses now (``auto`` resolved by the current size)."""
        if self.requested != "auto":
            return self.requested
        return "faiss" if len(self) >= self.threshold and faiss_available() else "exact"

    def add(self, vectors: np.ndarray, ids: Sequence[Hashable] | None = None) -> None:
        """Add rows (normalised here); ``ids`` default to their positions in the index."""
        vectors = normalise(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have size {vectors.shape[1]}, the index holds size {self.dim}")
        ids = list(range(len(self), len(self) + len(vectors))) if ids is None else list(ids)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        self._vectors = np.concatenate([self._vectors, vectors]) if len(self) else vectors
        self.ids.extend(ids)
        if self._faiss is not None:
            self._faiss.add(vectors)

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
        run = self._search_faiss if self.backend == "faiss" else self._search_exact
        positions, scores = run(queries, k)
        ids = [[self.ids[p] for p in row] for row in positions]
        return (ids[0], scores[0]) if single else (ids, scores)

    def _search_exact(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sims = queries @ self._vectors.T
        if k < sims.shape[1]:
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)

    def _search_faiss(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._faiss is None:
            import faiss  # optional heavy dependency (the demo extra): only for large galleries

            self._faiss = faiss.IndexFlatIP(self.dim)
            self._faiss.add(self._vectors)
        scores, positions = self._faiss.search(queries, k)
        return positions, scores
