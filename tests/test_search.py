"""EmbeddingIndex: exact and FAISS backends agree; edge cases are handled or refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

from mlilt.demo.index import NPROBES, TARGET_RECALL, EmbeddingIndex, faiss_available
from mlilt.errors import NotFoundError

needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is not installed")


def _data(n=500, dim=24, queries=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim)).astype(np.float32), rng.standard_normal((queries, dim)).astype(np.float32)


@needs_faiss
@pytest.mark.parametrize("k", [1, 5, 50])
def test_exact_and_faiss_agree(k):
    stored, queries = _data()
    results = {}
    for backend in ("exact", "faiss"):
        index = EmbeddingIndex(24, backend=backend)
        index.add(stored[:300])
        index.add(stored[300:])  # adding in two parts gives the same index
        assert index.backend == backend and len(index) == 500
        results[backend] = index.search(queries, k)
    assert results["exact"][0] == results["faiss"][0]
    np.testing.assert_allclose(results["exact"][1], results["faiss"][1], atol=1e-5)
    scores = results["exact"][1]
    assert scores.shape == (7, k) and np.all(np.diff(scores, axis=1) <= 1e-7)  # best first


def test_scores_are_cosines_and_brute_force_ranking():
    stored, queries = _data(n=60)
    index = EmbeddingIndex(24, backend="exact")
    index.add(stored, ids=[f"pic{i}" for i in range(60)])
    ids, scores = index.search(queries[0], k=3)
    unit = stored / np.linalg.norm(stored, axis=1, keepdims=True)
    cosines = unit @ (queries[0] / np.linalg.norm(queries[0]))
    expected = np.argsort(-cosines)[:3]
    assert ids == [f"pic{i}" for i in expected]
    np.testing.assert_allclose(scores, cosines[expected], atol=1e-5)


@pytest.mark.parametrize("backend", ["exact", pytest.param("faiss", marks=needs_faiss)])
def test_k_larger_than_the_collection(backend):
    stored, queries = _data(n=4)
    index = EmbeddingIndex(24, backend=backend)
    index.add(stored)
    ids, scores = index.search(queries, k=10)
    assert all(sorted(row) == [0, 1, 2, 3] for row in ids) and scores.shape == (7, 4)


@pytest.mark.parametrize("backend", ["exact", pytest.param("faiss", marks=needs_faiss)])
def test_empty_index_and_bad_input_are_refused(backend):
    index = EmbeddingIndex(8, backend=backend)
    with pytest.raises(ValueError, match="empty"):
        index.search(np.ones(8), k=3)
    index.add(np.ones((2, 8)))
    with pytest.raises(ValueError, match="size 5"):
        index.search(np.ones(5), k=1)
    with pytest.raises(ValueError, match="k must be"):
        index.search(np.ones(8), k=0)
    with pytest.raises(ValueError, match="ids"):
        index.add(np.ones((2, 8)), ids=["only-one"])
    with pytest.raises(ValueError, match="unknown search backend"):
        EmbeddingIndex(8, backend="annoy")


def test_auto_switches_backend_by_size():
    index = EmbeddingIndex(8, backend="auto", threshold=10)
    index.add(np.eye(8))
    assert index.backend == "exact"
    index.add(np.eye(8))
    assert index.backend == ("faiss" if faiss_available() else "exact")


# The approximate index for huge galleries, and indexes saved once and loaded back.


def _clustered(n=20_000, dim=32, clusters=200, queries=100, seed=0):
    """Vectors around cluster centres, as real embeddings are, and queries near (not on) them."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    stored = centres[rng.integers(0, clusters, n)] + 0.4 * rng.standard_normal((n, dim)).astype(np.float32)
    asked = centres[rng.integers(0, clusters, queries)] + 0.6 * rng.standard_normal((queries, dim)).astype(np.float32)
    return stored, asked


def _recall_at_10(found, exact) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))


@needs_faiss
def test_the_approximate_index_finds_what_exact_search_finds():
    stored, queries = _clustered()
    exact = EmbeddingIndex(32, backend="exact")
    exact.add(stored)
    approximate = EmbeddingIndex(32, backend="ivf")
    approximate.add(stored)
    approximate.build(queries=queries)
    assert approximate.nprobe in NPROBES and approximate.measured_recall >= TARGET_RECALL
    assert approximate._vectors.size == 0  # only the 8-bit codes are kept
    found, scores = approximate.search(queries, 10)
    assert _recall_at_10(found, exact.search(queries, 10)[0]) >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    approximate.add(stored[:5])  # adding after the build goes into the same index
    assert len(approximate) == 20_005 and approximate.search(stored[0], 1)[0][0] in (0, 20_000)


@pytest.mark.parametrize(
    "backend", ["exact", pytest.param("faiss", marks=needs_faiss), pytest.param("ivf", marks=needs_faiss)]
)
def test_a_saved_index_loads_back_with_the_same_results(backend, tmp_path):
    stored, queries = _clustered(n=3_000)
    index = EmbeddingIndex(32, backend=backend)
    index.add(stored, ids=[f"p{i}" for i in range(len(stored))])
    index.build()
    index.save(tmp_path / "index", about={"gallery": "here"})
    loaded = EmbeddingIndex.load(tmp_path / "index")
    assert loaded.backend == backend and len(loaded) == 3_000 and loaded.meta["about"] == {"gallery": "here"}
    assert loaded.nprobe == index.nprobe
    before, after = index.search(queries, 10), loaded.search(queries, 10)
    assert before[0] == after[0]
    np.testing.assert_allclose(before[1], after[1], atol=1e-6)


def test_an_incomplete_saved_index_is_refused(tmp_path):
    index = EmbeddingIndex(4, backend="exact")
    index.add(np.eye(4))
    index.save(tmp_path / "index")
    (tmp_path / "index" / "ids.json").write_text("[0, 1]")
    with pytest.raises(NotFoundError, match="incomplete"):
        EmbeddingIndex.load(tmp_path / "index")
    with pytest.raises(NotFoundError, match="no saved index"):
        EmbeddingIndex.load(tmp_path / "nothing")
