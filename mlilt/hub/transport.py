"""The Hugging Face Hub: ``mlilt push`` (stage, then upload an adapter folder) and downloading one back.

Pushing first *stages* exactly the folder that will be uploaded (``RUN/hub-staging`` by default):
the adapter weights and config, ``metrics.json``, ``report.json`` and charts (``*.png``) when the run
has them, and a generated ``README.md`` model card (:mod:`mlilt.hub.model_card`). Checkpoints and the
``reference-frozen`` subfolder are never included, a file that is a link is never followed, and local
paths in the staged JSON become relative (a file of the run) or bare file names. A staging folder holds a
``.mlilt-stage`` marker listing what it wrote: staging again removes exactly those files, and a folder
without the marker that is not empty (or that holds the run) is refused. ``--dry-run`` stops there.
The token comes from ``HF_TOKEN`` or ``hf auth login`` through huggingface_hub; mlilt never prints or
writes it. When the upload fails, the staged folder stays, and the message says what failed and how to
retry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token, snapshot_download
from huggingface_hub.utils import HFValidationError, validate_repo_id

from mlilt.constants import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    METRICS_NAME,
    REPORT_NAME,
    STAGE_DIR,
    STAGE_MARKER,
)
from mlilt.errors import ConfigError, NotFoundError, PushError, RunFolderError, first_line
from mlilt.hub.adapter_files import read_adapter_config
from mlilt.hub.model_card import AdapterCardData
from mlilt.version import __version__

CARD_NAME = "README.md"
# Only these leave the run folder (top level only: never checkpoint/, reference-frozen/ or best/).
UPLOADED_FILES = (ADAPTER_WEIGHTS_NAME, ADAPTER_CONFIG_NAME, METRICS_NAME, REPORT_NAME)
UPLOADED_PATTERNS = ("*.png",)
DOWNLOADED_PATTERNS = [ADAPTER_WEIGHTS_NAME, ADAPTER_CONFIG_NAME, METRICS_NAME, REPORT_NAME, CARD_NAME]
# An absolute POSIX path inside a string (not the path part of a URL, not a relative path).
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"|,;()]+/)*[^\s/'\"|,;()]+")


def stage(run_dir: Path, repo_id: str, stage_dir: Path | None = None, license: str = "apache-2.0") -> Path:
    """Write the folder that ``push`` uploads (and nothing else) and return its path.

    Args:
        run_dir: A run folder of ``mlilt adapt`` (or any adapter folder).
        repo_id: The Hub repository, ``user/name``; it appears in the model card.
        stage_dir: Where to stage (default ``run_dir/hub-staging``); replaced if it holds an earlier staging.
        license: The license identifier written into the card's metadata.
    """
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ConfigError(f"--repo {repo_id!r} is not a Hub repository id (user/name): {err}") from None
    run_dir = Path(run_dir)
    config = read_adapter_config(run_dir)  # refuses a malformed folder before anything is written
    stage_dir = Path(stage_dir) if stage_dir else run_dir / STAGE_DIR
    if run_dir.resolve().is_relative_to(stage_dir.resolve()):
        raise ConfigError(f"--stage {stage_dir} holds the run folder itself; choose an empty or new folder")
    _clear_earlier_staging(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    files = [run_dir / name for name in UPLOADED_FILES if (run_dir / name).is_file()]
    files += sorted(p for pattern in UPLOADED_PATTERNS for p in run_dir.glob(pattern) if p.is_file())
    written = []
    for path in files:
        if path.is_symlink():
            print(f"mlilt push: not staged: {path} is a link (links are never followed)", file=sys.stderr)
            continue
        if path.suffix == ".json":
            keep = ("model",) if path.name == ADAPTER_CONFIG_NAME else ()  # tower names load the base model
            data = json.loads(path.read_text(encoding="utf-8"))
            text = json.dumps(relative_paths(data, run_dir, keep), indent=2, ensure_ascii=False) + "\n"
            (stage_dir / path.name).write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(path, stage_dir / path.name)
        written.append(path.name)
    card = AdapterCardData.from_run(run_dir, config, repo_id, license=license).render()
    (stage_dir / CARD_NAME).write_text(card, encoding="utf-8")
    written.append(CARD_NAME)
    (stage_dir / STAGE_MARKER).write_text(json.dumps({"files": written}) + "\n", encoding="utf-8")
    return stage_dir


def _clear_earlier_staging(stage_dir: Path) -> None:
    """Remove what an earlier staging wrote into ``stage_dir`` (its marker lists it); refuse anybody else's files."""
    if not stage_dir.exists():
        return
    if not stage_dir.is_dir():
        raise RunFolderError(f"--stage {stage_dir} is a file; choose a new or empty folder")
    staged = set(staged_files(stage_dir))
    others = sorted(p.name for p in stage_dir.iterdir() if p.name not in staged | {STAGE_MARKER})
    if others:
        raise RunFolderError(
            f"--stage {stage_dir} holds files mlilt did not stage ({', '.join(others[:5])}); nothing was deleted. "
            "Choose a new or empty folder."
        )
    for name in staged:
        (stage_dir / name).unlink(missing_ok=True)


def staged_files(stage_dir: Path) -> list[str]:
    """The files a staging wrote into ``stage_dir`` (from its marker); empty when it holds no staging."""
    try:
        files = json.loads((stage_dir / STAGE_MARKER).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [str(name) for name in files] if isinstance(files, list) else []


def relative_paths(value, run_dir: Path, keep: tuple[str, ...] = ()):
    """``value`` (parsed JSON) with every absolute path in its strings made relative to the run, or a bare name.

    Keys in ``keep`` (at the top level) are left as they are.
    """
    root = run_dir.resolve()

    def shorten(match: re.Match) -> str:
        path = Path(match.group(0))
        return str(path.relative_to(root)) if path.is_relative_to(root) else path.name

    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(shorten, value)
    if isinstance(value, list):
        return [relative_paths(v, run_dir) for v in value]
    if isinstance(value, dict):
        return {k: v if k in keep else relative_paths(v, run_dir) for k, v in value.items()}
    return value


def upload(
    stage_dir: Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str = "Upload mlilt adapter",
) -> str:
    """Create the repository if needed and upload the staged folder; returns the commit (or PR) URL."""
    if constants.is_offline_mode():
        raise PushError("HF_HUB_OFFLINE is set, so nothing can be uploaded (unset it to push)")
    if not get_token():
        raise PushError("no Hugging Face token: log in with `hf auth login`, or set HF_TOKEN (a write token)")
    api = HfApi(library_name="mlilt")
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and not create_pr:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(stage_dir),
            allow_patterns=staged_files(stage_dir),  # exactly what was staged (never the marker, nothing added)
            revision=revision,
            create_pr=create_pr,
            commit_message=commit_message,
        )
    except Exception as err:  # network, HTTP (401/403/404...), and OS errors: all reported the same way
        raise PushError(_describe(err)) from err
    return getattr(info, "pr_url", None) or getattr(info, "commit_url", None) or str(info)


def download(repo_id: str, revision: str | None = None) -> Path:
    """The local folder of a Hub adapter, through the Hugging Face cache (works offline once cached)."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise NotFoundError(f"{repo_id!r} is neither a local folder nor a Hub id (user/name)") from err
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=DOWNLOADED_PATTERNS,
            library_name="mlilt",
            library_version=__version__,
        )
    except Exception as err:  # offline and not cached, unknown repo, gated, network...
        raise NotFoundError(
            f"{repo_id!r} is not a local folder, and the Hub repository could not be fetched ({_describe(err)}). "
            "Check the name and revision; offline, it must already be in the Hugging Face cache."
        ) from err
    return Path(folder)


def _describe(err: Exception) -> str:
    """One line about an error, with any token scrubbed."""
    text = f"{type(err).__name__}: {first_line(err)}"
    token = get_token() or os.environ.get("HF_TOKEN")
    return text.replace(token, "***") if token else text
