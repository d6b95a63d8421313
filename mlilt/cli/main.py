"""The ``mlilt`` command line: one small module a command (``mlilt/cli/<command>.py``), each delegating to the library.

Each command module has ``configure(parser)`` (its flags, description, examples) and ``run(args) -> exit code``.
Only the module of the command being run is imported (as pip does), so ``mlilt --help`` and ``mlilt languages``
start in a fraction of a second while ``mlilt adapt`` loads torch.

Errors a user can fix (:class:`mlilt.errors.MliltError`, and files the system refuses) print one line and exit
non-zero; a traceback means a bug in mlilt.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mlilt.errors import MliltError
from mlilt.version import __version__

# Command -> one line for `mlilt --help`; the command's flags live in mlilt/cli/<command>.py.
COMMANDS = {
    "adapt": "train a language adapter (LilT) and evaluate it",
    "eval": "evaluate a run on several languages (retrieval both ways, zero-shot, knowledge kept)",
    "study": "compare every tuning method, cross-lingual transfer and scarce data on one language",
    "languages": "list the languages mlilt knows (languages/*.yaml)",
    "translate": "machine-translate English captions into a language (cached, resumable)",
    "demo": "cross-lingual image search in the browser (Gradio)",
    "push": "publish a run's adapter to the Hugging Face Hub (with a model card)",
    "export": "export an adapter for serving: ONNX (every method) or sentence-transformers",
    "features": "fill the frozen-feature cache for many pictures, in one process or several",
    "index": "build a saved search index of a picture folder for the demo (approximate for huge ones)",
}


def _command_in(argv: list[str]) -> str | None:
    """The command named on the command line (the first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser, with the full flags of the command ``argv`` names (the others are listed by name only)."""
    parser = argparse.ArgumentParser(
        prog="mlilt",
        description="mlilt: parameter-efficient CLIP-style image-text models for languages with little paired "
        "data (LilT, Khan & Fu, ICLR 2023).",
        epilog="Run `mlilt COMMAND --help` for a command's flags and examples.",
    )
    parser.add_argument("--version", action="version", version=f"mlilt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _command_in(argv)
    for name, summary in COMMANDS.items():
        command_parser = sub.add_parser(name, help=summary, description=summary)
        if name == chosen:
            module = importlib.import_module(f"mlilt.cli.{name}")  # only the command that runs is imported
            module.configure(command_parser)
            command_parser.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        return args.handler(args)
    except MliltError as err:
        print(f"mlilt: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # the system refused a file: permission, disk full, a missing folder
        print(f"mlilt: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmlilt: interrupted", file=sys.stderr)
        return 130
