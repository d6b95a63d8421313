"""User errors at the command line: one clear message, a non-zero exit, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from mlilt.cli.main import main
from mlilt.config import RunConfig, TrainConfig, load_run_config
from mlilt.errors import ConfigError
from mlilt.resources import configs_dir

from helpers import adapt_args, tiny_recipe


def _fails(capsys, args: list[str], *expected: str) -> str:
    """Run the CLI in-process: it must return 2 (an exception escaping main would be a traceback) and end with
    one ``mlilt: error:`` line holding ``expected``; returns that line."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("mlilt: error:")]
    assert len(errors) == 1 and err.strip().endswith(errors[0]), err
    for text in expected:
        assert text in errors[0], err
    return errors[0]


def test_a_typo_in_vision_names_close_matches(tiny_assets, shapes_dataset, tmp_path, capsys):
    args = adapt_args(tiny_assets, shapes_dataset, tmp_path / "run", "--config", str(tiny_recipe(tmp_path)))
    args[args.index("--vision") + 1] = "vit_bse_patch16_224"
    _fails(capsys, args, "unknown vision model 'vit_bse_patch16_224'", "vit_base_patch16_224")
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_a_typo_in_text_says_how_to_work_offline(tiny_assets, shapes_dataset, tmp_path, capsys):
    args = adapt_args(tiny_assets, shapes_dataset, tmp_path / "run", "--config", str(tiny_recipe(tmp_path)))
    args[args.index("--text") + 1] = "xlm-robeta-base"
    _fails(capsys, args, "could not load text model 'xlm-robeta-base'", "offline:multilingual-e5-small")
    assert not (tmp_path / "run").exists()


def test_a_typo_in_method_lists_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["adapt", "--lang", "sw", "--method", "adaptors"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'adaptors'" in err and "adapters" in err and "ia3" in err


def test_a_missing_data_file(tmp_path, capsys):
    _fails(capsys, ["adapt", "--lang", "sw", "--data", str(tmp_path / "nothere.jsonl")], "no caption file at")


@pytest.mark.parametrize(
    "train, message",
    [
        ({"epochz": 3}, "unknown setting(s) ['epochz']"),
        ({"epochs": 1.5}, "epochs: expected a whole number, got 1.5"),
        ({"checkpoint_every": 0}, "checkpoint_every must be >= 1"),
        ({"lr": "fast"}, "lr: expected a number, got 'fast'"),
        ({"batch_size": 1}, "batch_size must be >= 2"),
    ],
)
def test_a_bad_recipe_names_the_setting(tmp_path, capsys, train, message):
    recipe = yaml.safe_load((configs_dir() / "default.yaml").read_text())
    recipe["train"].update(train)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe))
    _fails(capsys, ["adapt", "--lang", "sw", "--config", str(path)], f"recipe {path}", message)


def test_a_recipe_that_is_not_yaml(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("train: [unclosed\n")
    _fails(capsys, ["adapt", "--lang", "sw", "--config", str(path)], "is not valid YAML")


def test_numbers_pyyaml_reads_as_text_are_numbers():
    """PyYAML reads ``1e-4`` (no dot) as a string; YAML 1.2 and mlilt read it as the number."""
    recipe = yaml.safe_load("train:\n  lr: 1e-4\n  epochs: '3'\n")
    assert recipe["train"]["lr"] == "1e-4"
    cfg = RunConfig.from_dict(recipe)
    assert cfg.train.lr == 1e-4 and cfg.train.epochs == 3


def test_the_default_recipe_says_exactly_what_the_dataclasses_say():
    """configs/default.yaml writes the defaults out with their reasons; it may never drift from config.py."""
    assert load_run_config("default") == RunConfig()
    assert TrainConfig().lr == 1e-4 and RunConfig().model.text.prefix == ""


def test_an_unknown_method_in_python_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown tuning method 'adaptors'.*Did you mean 'adapters'"):
        load_run_config("default", {"model.text.method": "adaptors"})
    with pytest.raises(ConfigError, match="for the vision tower"):
        load_run_config("default", {"model.vision.method": "lora"})


@pytest.mark.integration
def test_the_installed_command_prints_one_line_not_a_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mlilt.cli", "adapt", "--lang", "sw", "--data", str(tmp_path / "none.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"mlilt: error: no caption file at {tmp_path / 'none.jsonl'}"]
