"""EmbeddingIndex: exact and FAISS backends agree; edge cases are handled or refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

from mlilt.demo.index import EmbeddingIndex, faiss_available

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
