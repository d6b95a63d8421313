"""The Hugging Face Hub: ``mlilt push`` (stage, then upload an adapter folder) and downloading one back.

Pushing first *stages* exactly the folder that will be uploaded (``RUN/hub-staging`` by default):
the adapter weights and config, ``metrics.json``, ``report.json`` and charts (``*.png``) when the run
has them, and a generated ``README.md`` model card (:mod:`mlilt.model_card`). Checkpoints and the
``reference-frozen`` subfolder are never included. ``--dry-run`` stops there. The token comes from
``HF_TOKEN`` or ``hf auth login`` through huggingface_hub; mlilt never prints or writes it. When the
upload fails, the staged folder stays, and the message says what failed and how to retry.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token, snapshot_download
from huggingface_hub.utils import HFValidationError, validate_repo_id

from mlilt.constants import ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, METRICS_NAME, REPORT_NAME
from mlilt.errors import ConfigError, NotFoundError, PushError, RunFolderError, first_line
from mlilt.hub.adapter_files import read_adapter_config
from mlilt.hub.model_card import AdapterCardData
from mlilt.version import __version__

STAGE_DIR = "hub-staging"
CARD_NAME = "README.md"
# Only these leave the run folder (top level only: never checkpoint/, reference-frozen/ or best/).
UPLOADED_FILES = (ADAPTER_WEIGHTS_NAME, ADAPTER_CONFIG_NAME, METRICS_NAME, REPORT_NAME)
UPLOADED_PATTERNS = ("*.png",)
DOWNLOADED_PATTERNS = [ADAPTER_WEIGHTS_NAME, ADAPTER_CONFIG_NAME, METRICS_NAME, REPORT_NAME, CARD_NAME]


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
    if stage_dir.resolve() == run_dir.resolve():
        raise ConfigError("--stage must not be the run folder itself")
    if stage_dir.exists():
        if any(stage_dir.iterdir()) and not (stage_dir / CARD_NAME).exists():
            raise RunFolderError(f"{stage_dir} exists and is not an earlier staging folder; choose another --stage")
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    files = [run_dir / name for name in UPLOADED_FILES if (run_dir / name).is_file()]
    files += sorted(p for pattern in UPLOADED_PATTERNS for p in run_dir.glob(pattern) if p.is_file())
    for path in files:
        shutil.copy2(path, stage_dir / path.name)
    card = AdapterCardData.from_run(run_dir, config, repo_id, license=license).render()
    (stage_dir / CARD_NAME).write_text(card, encoding="utf-8")
    return stage_dir


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
