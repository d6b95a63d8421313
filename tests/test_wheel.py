"""A plain wheel install works, not only the editable one: build the wheel, install it into a fresh venv outside
the checkout and use it from there (the recipes and language files must travel inside the wheel).

The fresh venv borrows the dependencies of the test environment through a ``.pth`` line (so torch is not copied
again; ``.pth`` files there, such as the editable install's, are not read), and the wheel's
declared requirements are met by them (checked with ``importlib.metadata`` in the fresh venv).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from helpers import adapt_args

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration
UNMET_REQUIREMENTS = """
import sys
from importlib.metadata import PackageNotFoundError, requires, version
from packaging.requirements import Requirement
unmet = []
for requirement in map(Requirement, requires("mlilt")):
    if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
        continue  # an extra (demo, test, bench)
    try:
        found = version(requirement.name)
    except PackageNotFoundError:
        found = None
    if found is None or not requirement.specifier.contains(found, prereleases=True):
        unmet.append(f"{requirement} (found {found})")
print("\\n".join(unmet))
sys.exit(1 if unmet else 0)
"""


def _run(command: list[str], cwd: Path, env: dict | None = None, timeout: int = 600) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(work / "dist")], cwd=work)
    (wheel,) = (work / "dist").glob("mlilt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mlilt/bundled/configs/default.yaml" in names and "mlilt/bundled/languages/sw.yaml" in names
    assert "mlilt/hub/model_card_template.md" in names
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    python = venv / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work).strip()
    )
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], cwd=work)
    return venv


def test_the_wheel_holds_and_finds_its_recipes_and_languages(wheel_venv, tmp_path):
    python = str(wheel_venv / "bin" / "python")
    where = _run(
        [python, "-c", "import mlilt, mlilt.resources as r; print(mlilt.__file__); print(r.configs_dir())"],
        cwd=tmp_path,
    ).split()
    assert all(Path(p).is_relative_to(wheel_venv) for p in where)  # the installed copy, not the checkout
    assert not Path(where[1]).is_symlink() and (Path(where[1]) / "default.yaml").is_file()
    _run([python, "-c", UNMET_REQUIREMENTS], cwd=tmp_path)  # every requirement the wheel declares is met


def test_the_installed_command_runs_outside_the_checkout(wheel_venv, tiny_assets, shapes_dataset, tmp_path):
    mlilt = str(wheel_venv / "bin" / "mlilt")
    env = {**os.environ, "MLILT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    assert "Zulu" in _run([mlilt, "languages", "--resource", "low"], cwd=tmp_path, env=env)
    assert "--method" in _run([mlilt, "adapt", "--help"], cwd=tmp_path, env=env)
    args = adapt_args(tiny_assets, shapes_dataset, tmp_path / "run", "--epochs", "1", "--head-warmup-epochs", "1")
    printed = _run([mlilt, *args], cwd=tmp_path, env=env)  # the recipe is the wheel's configs/default.yaml
    assert "gain over frozen" in printed and (tmp_path / "run" / "adapter_model.safetensors").is_file()
