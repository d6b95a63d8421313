"""``mlilt export --sentence-transformers``: merged weights give the same text embeddings; adapters are refused."""

from __future__ import annotations

import pytest
import torch
from sentence_transformers import SentenceTransformer

from mlilt.cli.main import main
from mlilt.errors import NotExportableError
from mlilt.hub.adapter_files import save_adapter
from mlilt.hub.export import export_sentence_transformers

from helpers import TEXTS, trained_model


def _trained(assets, method: str, prefix: str | None = None, pooling: str = "mean"):
    return trained_model(assets, method=method, prefix=prefix, pooling=pooling, lora_rank=4)


@pytest.mark.parametrize(
    "method,prefix,pooling",
    [("layernorm", "query: ", "mean"), ("lora", None, "mean"), ("ia3", None, "mean"), ("full", None, "cls")],
)
def test_export_gives_identical_text_embeddings(tiny_assets, tmp_path, method, prefix, pooling):
    model = _trained(tiny_assets, method, prefix, pooling)
    out = export_sentence_transformers(model, tmp_path / "st")
    st = SentenceTransformer(str(out), device="cpu")
    got = st.encode(TEXTS, convert_to_tensor=True).cpu()
    assert torch.allclose(got, model.embed_texts(TEXTS), atol=1e-5)
    assert st.default_prompt_name == ("query" if prefix else None)
    assert not any("lora_" in name or "ia3_" in name for name in st.state_dict())  # merged: a plain encoder


def test_export_command_from_a_run_folder(tiny_assets, tmp_path, capsys):
    model = _trained(tiny_assets, "bitfit")
    save_adapter(model, tmp_path / "run", {"lang": "sw"})
    assert main(["export", str(tmp_path / "run"), "--sentence-transformers", str(tmp_path / "st")]) == 0
    assert "same embeddings" in capsys.readouterr().out
    got = SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(TEXTS, convert_to_tensor=True).cpu()
    assert torch.allclose(got, model.embed_texts(TEXTS), atol=1e-5)
    assert main(["export", str(tmp_path / "run"), "--sentence-transformers", str(tmp_path / "st")]) == 2  # not empty


def test_adapters_are_refused_with_an_explanation(tiny_assets, tmp_path, capsys):
    model = _trained(tiny_assets, "adapters")
    with pytest.raises(NotExportableError, match="nonlinearity"):
        export_sentence_transformers(model, tmp_path / "st")
    save_adapter(model, tmp_path / "run", {"lang": "sw"})
    assert main(["export", str(tmp_path / "run"), "--sentence-transformers", str(tmp_path / "st2")]) == 2
    err = capsys.readouterr().err
    assert "mlilt.load" in err and all(m in err for m in ("layernorm", "bitfit", "ia3", "lora"))
    assert not (tmp_path / "st2").exists()
