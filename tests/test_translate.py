"""``mlilt translate`` with a tiny MarianMT built here: SentencePiece models trained in the test, random weights."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlilt.cli.main import main
from mlilt.data.sources import load_records
from mlilt.translate import Translator, translate_file

from helpers import COLOURS, SHAPES, draw_picture

SENTENCES = [f"a {c} {s} on white" for c in COLOURS for s in SHAPES] + [
    "mbwa mweusi",
    "paka mwekundu",
    "ndege wa bluu",
    "the quick brown fox jumps",
    "picha ya rangi",
    "duara la kijani",
    "mraba wa njano",
    "pembetatu ya zambarau",
]


def _tiny_marian(folder: Path, seed: int) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 3) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "spm"),
        vocab_size=100,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        pad_id=-1,
        minloglevel=2,
    )
    processor = spm.SentencePieceProcessor(model_file=str(folder / "spm.model"))
    pieces = ["</s>", "<unk>", "<pad>"] + [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    vocab = {piece: i for i, piece in enumerate(dict.fromkeys(pieces))}
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes((folder / "spm.model").read_bytes())
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = MarianTokenizer(str(folder / "source.spm"), str(folder / "target.spm"), str(folder / "vocab.json"))
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"],
        decoder_start_token_id=vocab["<pad>"],
    )
    model_dir = folder / "model"
    MarianMTModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def marian_pair(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("marian")
    return str(_tiny_marian(root / "fwd", seed=0)), str(_tiny_marian(root / "back", seed=1))


@pytest.fixture()
def english_captions(tmp_path) -> Path:
    lines = []
    for colour in list(COLOURS)[:3]:
        for shape in SHAPES:
            name = f"img/{colour}-{shape}.png"
            (tmp_path / "img").mkdir(exist_ok=True)
            draw_picture(colour, shape, size=32).save(tmp_path / name)
            lines.append({"image": name, "caption": f"a {colour} {shape} on white", "lang": "en"})
    lines.append({"image": "img/red-circle.png", "caption": "a red circle on white", "lang": "en", "primary": False})
    lines.append({"image": "img/red-circle.png", "caption": "duara", "lang": "sw"})  # not English: left out
    path = tmp_path / "captions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture()
def model_calls(monkeypatch) -> SimpleNamespace:
    """Counts model calls (one per batch); with ``fail_after = N`` call N+1 raises, like a crash mid-way."""
    state, original = SimpleNamespace(count=0, fail_after=None), Translator.__call__

    def counted(self, texts):
        if state.fail_after is not None and state.count >= state.fail_after:
            raise RuntimeError("simulated crash")
        state.count += 1
        return original(self, texts)

    monkeypatch.setattr(Translator, "__call__", counted)
    return state


def _run(data, out, model, cache, **kw):
    return translate_file(
        str(data),
        "sw",
        out,
        model,
        max_new_tokens=6,
        num_beams=1,
        cache_path=cache,
        batch_size=4,
        progress=False,
        **kw,
    )


def test_output_is_a_caption_file_and_rerun_uses_the_cache(marian_pair, english_captions, tmp_path, model_calls):
    out, cache = tmp_path / "out" / "sw.jsonl", tmp_path / "cache.sqlite"
    summary = _run(english_captions, out, marian_pair[0], cache)
    assert (summary.records, summary.distinct_captions, summary.cache_hits) == (13, 12, 0)
    assert model_calls.count == 3  # 12 distinct captions in batches of 4
    records = load_records(str(out))
    assert len(records) == 13 and all(r.lang == "sw" for r in records)
    assert {r.source for r in records} == {f"machine-translated:{marian_pair[0]}"}
    assert all(Path(r.image).is_file() for r in records)
    assert sum(not r.primary for r in records) == 1
    first = out.read_text("utf-8")
    summary = _run(english_captions, out, marian_pair[0], cache)
    assert model_calls.count == 3 and summary.cache_hits == 12 and summary.translated == 0
    assert out.read_text("utf-8") == first


def test_resume_after_a_crash_keeps_finished_batches(marian_pair, english_captions, tmp_path, model_calls):
    out, cache = tmp_path / "sw.jsonl", tmp_path / "cache.sqlite"
    model_calls.fail_after = 2
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(english_captions, out, marian_pair[0], cache)
    assert not out.exists()
    model_calls.fail_after = None
    summary = _run(english_captions, out, marian_pair[0], cache)
    assert summary.cache_hits == 8 and summary.translated == 4 and model_calls.count == 3
    fresh = _run(english_captions, tmp_path / "fresh.jsonl", marian_pair[0], tmp_path / "other.sqlite")
    assert fresh.translated == 12
    assert out.read_text("utf-8") == (tmp_path / "fresh.jsonl").read_text("utf-8")  # same as an uninterrupted run


def test_roundtrip_chrf_with_a_reverse_model(marian_pair, english_captions, tmp_path, capsys):
    out = tmp_path / "sw.jsonl"
    code = main(
        [
            "translate",
            "--lang",
            "sw",
            "--data",
            str(english_captions),
            "--model",
            marian_pair[0],
            "--reverse-model",
            marian_pair[1],
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--min-chrf",
            "101",
            "--max-new-tokens",
            "6",
            "--beams",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert all(0 <= row["roundtrip_chrf"] <= 100 and row["flagged"] is True for row in rows)
    assert "13 caption(s) below 101.0 flagged" in capsys.readouterr().out


def test_offline_hub_id_says_to_pass_a_local_folder(english_captions, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(
        [
            "translate",
            "--lang",
            "sw",
            "--data",
            str(english_captions),
            "--out",
            str(tmp_path / "o.jsonl"),
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Helsinki-NLP/opus-mt-en-sw" in err and "--model DIR" in err
