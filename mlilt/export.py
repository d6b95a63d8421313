"""``mlilt export``: the text side of an adapter as a plain sentence-transformers model.

Methods that only change existing weights (``frozen``, ``layernorm``, ``bitfit``, ``full``) or add
a linear update that can be folded into them (``lora``: ``W + B A * alpha / r``) merge into an
unmodified transformers encoder. The exported folder is Transformer (merged weights) -> Pooling
(the tower's mean / cls) -> Dense (= ``text_head``, no activation) -> Normalize, with the tower's
prefix as the default prompt, so ``SentenceTransformer(OUT).encode(texts)`` equals
``mlilt.load(RUN).embed_texts(texts)``; the export checks that before it returns.

``adapters`` cannot be exported: bottleneck adapters put a nonlinearity (GELU) between two new
layers, injected with hooks, and that is not expressible as a change of the base weights.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import shutil
import tempfile
from pathlib import Path

PROBE_TEXTS = ["mbwa", "a red circle", "ይህ ሙከራ ነው", "ẹ kú àárọ̀", "the quick brown fox jumps over the lazy dog"]
PROMPT_NAME = "query"
TOLERANCE = 1e-5


class NotExportableError(ValueError):
    """The adapter's method cannot be merged into the base weights."""


def check_exportable(method) -> None:
    """Raise :class:`NotExportableError`, with the reason and the alternatives, for a method that cannot merge."""
    from mlilt.config import Method

    if Method(method) == Method.ADAPTERS:
        raise NotExportableError(
            "method 'adapters' cannot be exported as a sentence-transformers model: its bottleneck adapters "
            "(down -> GELU -> up, injected with forward hooks) have a nonlinearity, so they cannot be merged into "
            "the base weights. Load it with `mlilt.load(...)` and use model.embed_texts, or train with "
            "--method layernorm, lora or bitfit for an exportable model."
        )


def merged_encoder(model):
    """A copy of the text encoder with every trained change merged in: a plain transformers model."""
    from mlilt.config import Method

    method = model.config.text.method
    check_exportable(method)
    encoder = copy.deepcopy(model.text.encoder).eval()
    if method == Method.LORA:
        _merge_lora(encoder)
    return encoder


def _merge_lora(encoder) -> None:
    """Fold each peft LoRA layer into its base ``nn.Linear`` and put the plain layer back in its place."""
    from peft.tuners.lora import LoraLayer

    layers = [(name, m) for name, m in encoder.named_modules() if isinstance(m, LoraLayer)]
    for name, layer in layers:
        layer.merge(safe_merge=True)
        parent_name, _, child = name.rpartition(".")
        parent = encoder.get_submodule(parent_name) if parent_name else encoder
        setattr(parent, child, layer.get_base_layer())
    leftovers = [n for n, _ in encoder.named_parameters() if "lora_" in n]
    if leftovers:
        raise RuntimeError(f"LoRA merge left parameters behind: {leftovers[:3]}")


def to_sentence_transformer(model):
    """A :class:`sentence_transformers.SentenceTransformer` computing ``model.embed_texts``."""
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

    tower = model.text
    encoder = merged_encoder(model)
    # The tower pools token states itself: keep the encoder's unused pooler out of the export.
    has_pooler_flag = "add_pooling_layer" in inspect.signature(type(encoder)).parameters
    no_pooler = {"add_pooling_layer": False} if has_pooler_flag else {}
    verbosity = transformers.logging.get_verbosity()
    with tempfile.TemporaryDirectory(prefix="mlilt-export-") as tmp:
        encoder.save_pretrained(tmp)
        tower.tokenizer.save_pretrained(tmp)
        transformers.logging.set_verbosity_error()
        try:
            transformer = Transformer(tmp, max_seq_length=tower.max_length, model_kwargs=no_pooler)
        finally:
            transformers.logging.set_verbosity(verbosity)
    head = model.text_head
    dense = Dense(head.in_features, head.out_features, bias=True, activation_function=torch.nn.Identity(),
                  init_weight=head.weight.detach().clone(), init_bias=head.bias.detach().clone())
    modules = [transformer, Pooling(tower.hidden_size, pooling_mode=tower.pooling), dense, Normalize()]
    prompts = {PROMPT_NAME: tower.prefix} if tower.prefix else None
    return SentenceTransformer(modules=modules, prompts=prompts, default_prompt_name=PROMPT_NAME if prompts else None,
                               device="cpu", similarity_fn_name="cosine")


def export_sentence_transformers(source, out: Path, revision: str | None = None,
                                 check_texts: list[str] | None = None) -> Path:
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
    import torch
    from sentence_transformers import SentenceTransformer

    import mlilt

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose another folder")
    if not isinstance(source, torch.nn.Module) and Path(source).exists():
        from mlilt.adapter_files import model_config_of

        check_exportable(model_config_of(Path(source)).text.method)  # refuse before loading the towers
    model = source if isinstance(source, torch.nn.Module) else mlilt.load(source, revision=revision)
    model = model.cpu().eval()
    st_model = to_sentence_transformer(model)
    st_model.save(str(out))
    texts = check_texts or PROBE_TEXTS
    expected = model.embed_texts(texts)
    got = torch.as_tensor(SentenceTransformer(str(out), device="cpu").encode(texts, convert_to_tensor=True)).cpu()
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=TOLERANCE):
        shutil.rmtree(out)
        diff = (got - expected).abs().max().item() if got.shape == expected.shape else float("nan")
        raise RuntimeError(f"the exported model does not reproduce embed_texts (max difference {diff:.2e}); "
                           "nothing was kept")
    return out


EXPORT_EPILOG = """\
examples:
  mlilt export runs/sw-lora --sentence-transformers exports/sw-lora-st
  mlilt export me/mlilt-sw --sentence-transformers exports/sw-st      (a Hub id works too)

then:
  from sentence_transformers import SentenceTransformer
  st = SentenceTransformer("exports/sw-lora-st")
  st.encode(["mbwa", "paka"])      # == mlilt.load("runs/sw-lora").embed_texts(["mbwa", "paka"])

Exportable methods: frozen, layernorm, bitfit, full (weights copied) and lora (merged into the
attention projections). Not exportable: adapters (a nonlinear bottleneck injected with hooks cannot
be merged into the base weights; use mlilt.load). Only the text side is exported: pictures still
need mlilt.load(...).embed_images. The export is reloaded and checked against embed_texts
(max difference 1e-5) before the command succeeds.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mlilt export``."""
    p = subparsers.add_parser(
        "export", help="export the text side of an adapter as a sentence-transformers model",
        description="Merge the trained weights of the text tower into a plain transformers encoder and write "
        "Transformer + Pooling + Dense (the text head) + Normalize as a sentence-transformers model folder.",
        epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run or adapter folder, or a Hub id (user/name)")
    p.add_argument("--sentence-transformers", dest="st_out", type=Path, required=True, metavar="OUT",
                   help="folder to write the sentence-transformers model into (new or empty)")
    p.add_argument("--revision", help="branch, tag or commit, when RUN is a Hub id")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    out = export_sentence_transformers(args.run, args.st_out, revision=args.revision)
    print(f"wrote a sentence-transformers model to {out} (checked: same embeddings as mlilt's embed_texts)")
    return 0
