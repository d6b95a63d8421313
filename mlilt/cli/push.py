"""``mlilt push``: stage a run's adapter with a model card, then upload it (:mod:`mlilt.hub.transport`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from mlilt.constants import STAGE_DIR
from mlilt.errors import PushError
from mlilt.hub.transport import stage, staged_files, upload

EPILOG = """\
examples:
  mlilt push runs/sw-adapters --repo me/mlilt-sw --dry-run     stage only: look at runs/sw-adapters/hub-staging
  mlilt push runs/sw-adapters --repo me/mlilt-sw               create the repo (public) and upload
  mlilt push runs/sw-adapters --repo me/mlilt-sw --private --revision v2 --create-pr

What is uploaded: adapter_model.safetensors, adapter_config.json, metrics.json, report.json and
*.png charts when the run has them, and a generated README.md model card (YAML metadata the Hub
reads: language, license, base models, model-index with the test retrieval results). Checkpoints
and the reference-frozen/ folder never are. The token comes from `hf auth login` or HF_TOKEN and is
never printed. Load the result anywhere with:  import mlilt; model = mlilt.load("me/mlilt-sw")
"""
DEFAULT_LICENSE = "apache-2.0"
DEFAULT_MESSAGE = "Upload mlilt adapter"


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Stage a run's adapter files and a generated model card into a folder, then upload that folder to a "
        "Hugging Face model repository."
    )
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("run", type=Path, help="run folder written by `mlilt adapt` (e.g. runs/sw-adapters)")
    p.add_argument("--repo", required=True, help="Hub repository id, user/name or org/name (created if missing)")
    p.add_argument("--dry-run", action="store_true", help="only stage the folder that would be uploaded")
    p.add_argument("--stage", type=Path, help=f"staging folder (default RUN/{STAGE_DIR}; replaced on each push)")
    p.add_argument("--private", action="store_true", help="create the repository as private (if it is new)")
    p.add_argument("--revision", help="branch to push to (created from main if missing)")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing directly")
    p.add_argument(
        "--license",
        default=DEFAULT_LICENSE,
        help=f"license in the card (default {DEFAULT_LICENSE}; check the base towers' and the data's licenses)",
    )
    p.add_argument("--message", default=DEFAULT_MESSAGE, help="commit message")


def run(args: argparse.Namespace) -> int:
    staged = stage(args.run, args.repo, args.stage, license=args.license)
    files = sorted(staged_files(staged))
    print(f"staged {len(files)} files in {staged}: {', '.join(files)}")
    if args.dry_run:
        print("dry run: nothing uploaded")
        return 0
    try:
        url = upload(
            staged,
            args.repo,
            private=args.private,
            revision=args.revision,
            create_pr=args.create_pr,
            commit_message=args.message,
        )
    except PushError as err:
        print(
            f"mlilt push: upload to {args.repo} failed: {err}\n"
            f"The staged folder is kept at {staged}.\n"
            f"Retry with: {retry_command(args)}",
            file=sys.stderr,
        )
        return err.exit_code
    print(f"pushed to https://huggingface.co/{args.repo}: {url}")
    return 0


def retry_command(args: argparse.Namespace) -> str:
    """The command line that retries this push with the same settings."""
    words = ["mlilt", "push", str(args.run), "--repo", args.repo]
    if args.stage:
        words += ["--stage", str(args.stage)]
    changed = {
        "--revision": args.revision,
        "--license": args.license if args.license != DEFAULT_LICENSE else None,
        "--message": args.message if args.message != DEFAULT_MESSAGE else None,
    }
    for flag, value in changed.items():
        if value:
            words += [flag, value]
    words += [flag for flag, on in (("--private", args.private), ("--create-pr", args.create_pr)) if on]
    return shlex.join(words)
