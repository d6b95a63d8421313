"""The resume checkpoint: trainable weights, AdamW moments, RNG state and progress in one safetensors file,
replaced atomically (written to a temporary file, then ``os.replace``), so a kill never leaves half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from mlilt.errors import RunFolderError, first_line
from mlilt.model import trainable_state


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Trainable weights + AdamW moments + RNG state + progress, in one file, replaced atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in trainable_state(model).items()}
    for index, moments in optimizer.state_dict()["state"].items():
        for key, value in moments.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"state": json.dumps(state)})
    os.replace(tmp, path)


def checkpoint_state(path: Path) -> dict:
    """The progress a checkpoint records (step, best epoch and metric, history, seconds), read from its header."""
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["state"])


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore what :func:`save_checkpoint` wrote into ``model`` and ``optimizer``; returns the progress state."""
    with safe_open(str(path), framework="pt") as handle:
        state = json.loads(handle.metadata()["state"])
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    missing = set(trainable_state(model)) - set(weights)
    if missing:
        raise RunFolderError(f"checkpoint {path} does not fit this model (missing {sorted(missing)[:3]} ...)")
    model.load_state_dict(weights, strict=False)
    moments: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            moments.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": moments, "param_groups": optimizer.state_dict()["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return state


def verify_checkpoint(path: Path) -> dict:
    """Read a whole checkpoint and check it can be resumed from (before anything trains); returns its state.

    Raises:
        RunFolderError: It is truncated, unreadable, or its RNG state cannot be restored; the message names it.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            state = json.loads(handle.metadata()["state"])
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        torch.Generator().set_state(tensors["rng.torch"])  # the stored RNG state must be a valid one
        int(state["step"])
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, RuntimeError) as err:
        raise RunFolderError(
            f"--resume: the checkpoint {path} is damaged ({type(err).__name__}: {first_line(err)}); this run "
            "cannot be continued: start it again with another --out (or delete the folder)"
        ) from None
    return state


def read_log(path: Path) -> list[dict]:
    """The step records of ``metrics.jsonl``; a last line cut short by a kill is dropped, any other bad line named."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):
                break  # written when the process died
            raise RunFolderError(f"{path}, line {number} is damaged ({err}); delete that line and resume") from None
    return records


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    kept = [json.dumps(record) for record in read_log(path) if record["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
