"""Token ids of many captions: flat arrays, tokenised in blocks, kept on disk (checked) for the next run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlilt.data import tokens as tokens_module
from mlilt.data.tokens import TokenTable, tokenize_all
from mlilt.model import text_features

from helpers import tiny_tokenizer, trained_model


@pytest.fixture
def tokenizer():
    tok = tiny_tokenizer()
    return lambda texts: tok(texts, padding=False)["input_ids"]


def test_a_table_holds_what_the_lists_hold(tokenizer):
    texts = ["red circle", "a picture of blue bar", "", "mbwa paka ndege"] * 3
    lists = tokenizer(texts)
    table = tokenize_all(texts, tokenizer)
    assert len(table) == 12 and [list(table[i]) for i in range(12)] == lists
    assert table.lengths.tolist() == [len(t) for t in lists]
    assert table == TokenTable.from_lists(lists) and len(tokenize_all([], tokenizer)) == 0


def test_large_sets_are_kept_and_loaded_the_next_time(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("MLILT_CACHE", str(tmp_path))
    monkeypatch.setattr(tokens_module, "CACHE_FROM", 10)
    monkeypatch.setattr(tokens_module, "BLOCK", 7)  # several blocks, joined
    texts = [f"red circle {'blue ' * (i % 5)}bar" for i in range(40)]
    first = tokenize_all(texts, tokenizer, fingerprint="tiny")
    assert first == TokenTable.from_lists(tokenizer(texts))

    def refuse(_texts):
        raise AssertionError("tokenised again")

    assert tokenize_all(texts, refuse, fingerprint="tiny") == first  # from the cache
    with pytest.raises(AssertionError):  # another tokenizer's fingerprint, or other captions: not the same ids
        tokenize_all(texts, refuse, fingerprint="other")
    with pytest.raises(AssertionError):
        tokenize_all(texts[:-1], refuse, fingerprint="tiny")
    # a damaged copy is tokenised again, never used
    (ids,) = (tmp_path / "tokens").glob("*/ids.npy")
    data = bytearray(ids.read_bytes())
    data[-4:] = b"\x01\x02\x03\x04"
    ids.write_bytes(bytes(data))
    assert tokenize_all(texts, tokenizer, fingerprint="tiny") == first


def test_text_features_too_large_for_memory_are_read_from_disk(tiny_assets, monkeypatch, tmp_path):
    monkeypatch.setenv("MLILT_CACHE", str(tmp_path))
    model = trained_model(tiny_assets, method="frozen")
    texts = [f"{c} {s}" for c in ("red", "blue", "green") for s in ("circle", "bar", "square", "triangle")] * 3
    table = tokenize_all(texts, model.text.token_ids)
    in_memory = text_features(model, table, progress=False)
    monkeypatch.setattr("mlilt.model.IN_MEMORY_BYTES", 0)
    on_disk = text_features(model, table, progress=False)
    assert isinstance(in_memory, torch.Tensor) and not on_disk.in_memory
    assert torch.equal(on_disk[:], in_memory)
    picks = [5, 0, 35, 5]
    assert torch.equal(on_disk[picks], in_memory[picks])
    spill = list((tmp_path / "spill").glob("*/text-features.safetensors"))
    assert len(spill) == 1
    del on_disk  # the temporary file goes with the table
    assert not spill[0].exists()
    assert np.isfinite(in_memory.numpy()).all()
