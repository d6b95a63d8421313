"""``mlilt export``: the text side of an adapter as a plain sentence-transformers model.

Methods that only change existing weights (``frozen``, ``layernorm``, ``bitfit``, ``full``) or add
a linear change that can be folded into them (``lora``: ``W + B A * alpha / r``; ``ia3``: scaled rows or
columns) merge into an unmodified transformers encoder; each method's registration says how
(:mod:`mlilt.tuning.registry`). The exported folder is Transformer (merged weights) -> Pooling
(the tower's mean / cls) -> Dense (= ``text_head``, no activation) -> Normalize, with the tower's
prefix as the default prompt, so ``SentenceTransformer(OUT).encode(texts)`` equals
``mlilt.load(RUN).embed_texts(texts)``; the export checks that before it returns.

``adapters`` cannot be exported: bottleneck adapters put a nonlinearity (GELU) between two new
layers, injected with hooks, and that is not expressible as a change of the base weights.
"""

from __future__ import annotations

import copy
import inspect
import shutil
import tempfile
from pathlib import Path

import torch
import transformers
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

from mlilt.errors import NotExportableError, RunFolderError
from mlilt.hub.adapter_files import model_config_of
from mlilt.hub.loading import load
from mlilt.model import DualEncoder
from mlilt.tuning.registry import TuningMethod, get_method, method_names

PROBE_TEXTS = ["mbwa", "a red circle", "ይህ ሙከራ ነው", "ẹ kú àárọ̀", "the quick brown fox jumps over the lazy dog"]
PROMPT_NAME = "query"
TOLERANCE = 1e-5


def exportable_method(name: str) -> TuningMethod:
    """The registered method ``name`` if it merges into the base weights, else :class:`NotExportableError`."""
    method = get_method(name)
    if method.merge is None:
        raise NotExportableError(
            f"method {name!r} cannot be exported as a sentence-transformers model: {method.not_mergeable}. "
            "Export it with `mlilt export RUN --onnx OUT` (every method), load it with `mlilt.load(...)`, "
            "or train with a method that merges "
            f"(--method {', '.join(n for n in method_names('text') if get_method(n).merge)}) for an exportable model."
        )
    return method


def merged_encoder(model: DualEncoder):
    """A copy of the text encoder with every trained change merged in: a plain transformers model."""
    method = exportable_method(model.config.text.method)
    encoder = copy.deepcopy(model.text.encoder).eval()
    method.merge(encoder)
    return encoder


def _zero_pooler(encoder) -> None:
    """Give an encoder whose pooler mlilt removed a pooler of zeros, as the converted e5 has: the export then loads
    with no weight missing (no "LOAD REPORT ... newly initialized" on every load) and pooler_output is visibly
    empty; sentence-transformers mean-pools the token states and never uses it."""
    if (
        getattr(encoder, "pooler", "none") is not None
        or "add_pooling_layer" not in inspect.signature(type(encoder)).parameters
    ):
        return
    with torch.device("meta"):  # the class's own pooler, built without allocating the rest of the model
        pooler = type(encoder)(encoder.config, add_pooling_layer=True).pooler
    encoder.pooler = pooler.to_empty(device="cpu").requires_grad_(False)
    for param in encoder.pooler.parameters():
        torch.nn.init.zeros_(param)


def to_sentence_transformer(model):
    """A :class:`sentence_transformers.SentenceTransformer` computing ``model.embed_texts``."""
    tower = model.text
    encoder = merged_encoder(model)
    _zero_pooler(encoder)
    verbosity = transformers.logging.get_verbosity()
    with tempfile.TemporaryDirectory(prefix="mlilt-export-") as tmp:
        encoder.save_pretrained(tmp)
        tower.tokenizer.save_pretrained(tmp)
        transformers.logging.set_verbosity_error()
        try:
            transformer = Transformer(tmp, max_seq_length=tower.max_length)
        finally:
            transformers.logging.set_verbosity(verbosity)
    head = model.text_head
    dense = Dense(
        head.in_features,
        head.out_features,
        bias=True,
        activation_function=torch.nn.Identity(),
        init_weight=head.weight.detach().clone(),
        init_bias=head.bias.detach().clone(),
    )
    modules = [transformer, Pooling(tower.hidden_size, pooling_mode=tower.pooling), dense, Normalize()]
    prompts = {PROMPT_NAME: tower.prefix} if tower.prefix else None
    return SentenceTransformer(
        modules=modules,
        prompts=prompts,
        default_prompt_name=PROMPT_NAME if prompts else None,
        device="cpu",
        similarity_fn_name="cosine",
    )


def export_sentence_transformers(
    source, out: Path, revision: str | None = None, check_texts: list[str] | None = None
) -> Path:
    """Write the text side of ``source`` (a run folder, Hub id, or loaded model) as a sentence-transformers folder.

    Args:
        source: A :class:`~mlilt.model.DualEncoder`, or anything :func:`mlilt.load` accepts.
        out: The folder to write; must not exist or be empty.
        revision: Hub revision, when ``source`` is a Hub id.
        check_texts: Texts whose embeddings must match ``embed_texts`` after reloading (default: a few probes).

    Raises:
        NotExportableError: For the ``adapters`` method.
        RuntimeError: If the reloaded export does not reproduce the model's embeddings.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise RunFolderError(f"{out} exists and is not empty; choose another folder")
    if not isinstance(source, torch.nn.Module) and Path(source).exists():
        exportable_method(model_config_of(Path(source)).text.method)  # refuse before loading the towers
    model = source if isinstance(source, torch.nn.Module) else load(source, revision=revision)
    model = model.cpu().eval()
    st_model = to_sentence_transformer(model)
    st_model.save(str(out))
    texts = check_texts or PROBE_TEXTS
    expected = model.embed_texts(texts)
    got = torch.as_tensor(SentenceTransformer(str(out), device="cpu").encode(texts, convert_to_tensor=True)).cpu()
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=TOLERANCE):
        shutil.rmtree(out)
        diff = (got - expected).abs().max().item() if got.shape == expected.shape else float("nan")
        raise RuntimeError(
            f"the exported model does not reproduce embed_texts (max difference {diff:.2e}); nothing was kept"
        )
    return out
