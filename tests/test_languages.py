"""languages/*.yaml: every file validates; lookups, errors and the ``mlilt languages`` command."""

from __future__ import annotations

import json

import pytest

from mlilt.cli.main import main
from mlilt.languages import EVAL_SETS, Language, list_languages, load_language
from mlilt.resources import languages_dir


def test_every_file_loads_and_validates():
    languages = list_languages()
    assert len(languages) == len(list(languages_dir().glob("*.yaml"))) >= 100
    assert all(
        lang.code and set(lang.eval_sets) <= set(EVAL_SETS) and "emoji-cldr" in lang.eval_sets for lang in languages
    )


@pytest.mark.parametrize(
    "code, script, name",
    [
        ("sw", "Latn", "Swahili"),
        ("am", "Ethi", "Amharic"),
        ("yo", "Latn", "Yoruba"),
        ("zu", "Latn", "Zulu"),
        ("ha", "Latn", "Hausa"),
        ("sr_Latn", "Latn", "Serbian (Latin)"),
    ],
)
def test_target_languages(code, script, name):
    lang = load_language(code)
    assert (lang.code, lang.script, lang.name) == (code, script, name)
    assert lang.emoji_cldr_names > 1000 and lang.iso639_3


def test_curated_facts_of_a_few_languages():
    sw, am, yo = load_language("sw"), load_language("am"), load_language("sr-Latn")
    assert sw.xlmr and sw.mbert and sw.nllb == "swh_Latn" and sw.opus_mt == "Helsinki-NLP/opus-mt-en-sw"
    assert "xm3600" in sw.eval_sets and am.nllb == "amh_Ethi" and not am.mbert
    assert yo.code == "sr_Latn"


def test_unknown_code_suggests_close_matches_and_the_readme():
    with pytest.raises(ValueError, match=r"Close matches: .*sw \(Swahili\).*Adding a language"):
        load_language("swa")
    with pytest.raises(ValueError, match=r"yo \(Yoruba\)"):
        load_language("yoruba")


def test_validation_says_what_is_wrong():
    good = load_language("sw").to_dict()
    with pytest.raises(ValueError, match="script 'Latin' must be a 4-letter"):
        Language(**(good | {"script": "Latin"}))
    with pytest.raises(ValueError, match=r"emoji_cldr_names must be an integer >= 0.*eval_sets \['flickr'\]"):
        Language(**(good | {"emoji_cldr_names": -1, "eval_sets": ["flickr"]}))
    with pytest.raises(ValueError, match="code 'SW' is not a CLDR code"):
        Language(**(good | {"code": "SW"}))


def test_bad_file_is_reported(tmp_path):
    (tmp_path / "xx.yaml").write_text(
        "code: yy\niso639_1: null\niso639_3: yyy\nname: Y\nnative_name: null\n"
        "script: Latn\nxlmr: false\nmbert: false\nresource_level: low\n"
        "emoji_cldr_names: 0\n"
    )
    with pytest.raises(ValueError, match="must equal the file name 'xx'"):
        list_languages(tmp_path)


def test_cli_table_and_filters(capsys):
    assert main(["languages"]) == 0
    out = capsys.readouterr().out
    assert "Kiswahili" in out and "opus-mt-en-sw" in out and f"{len(list_languages())} language(s)" in out
    assert main(["languages", "--script", "Ethi"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["am", "ti"]


def test_cli_json_filters(capsys):
    assert main(["languages", "--json", "--no-xlmr", "--min-names", "1200", "--script", "latn"]) == 0
    rows = json.loads(capsys.readouterr().out)
    codes = {row["code"] for row in rows}
    assert {"yo", "zu", "ig", "wo", "rw"} <= codes and "sw" not in codes
    assert all(not row["xlmr"] and row["emoji_cldr_names"] >= 1200 and row["script"] == "Latn" for row in rows)
    assert main(["languages", "--json", "--resource", "high", "--xlmr"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(row["resource_level"] == "high" and row["xlmr"] for row in rows)
