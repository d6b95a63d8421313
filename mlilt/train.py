"""One readable contrastive training loop: schedule, clipping, validation, checkpoints and resume.

- AdamW; warm-up then cosine decay (a plain function of the step); no weight decay on 1-D parameters.
- Validation (text -> image retrieval on the val split) after every epoch; the best epoch's
  adapter is kept in the run folder.
- A checkpoint (trainable weights, optimizer moments, RNG state, progress) is one safetensors file
  replaced atomically every ``checkpoint_every`` steps and at each epoch's end. ``resume=True``
  continues from it and ends exactly where an uninterrupted run would have.
- Under ``torchrun`` each process takes its slice of every global batch; the loss gathers all
  embeddings and gradients are averaged, so the result matches a single-process run.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from mlilt.adapter_files import save_adapter, trainable_state
from mlilt.config import TrainConfig
from mlilt.constants import CHECKPOINT_NAME, STEP_METRICS_NAME
from mlilt.data.prepare import CaptionTable, PreparedData, epoch_batches, pad_tokens
from mlilt.evaluate import PRIMARY_METRIC, retrieval_metrics
from mlilt.features import open_rgb
from mlilt.loss import ContrastiveLoss
from mlilt.model import DualEncoder


@dataclass
class TrainResult:
    best_epoch: int
    best_metric: float
    history: list[dict] = field(default_factory=list)  # one entry per epoch
    seconds: float = 0.0
    steps: int = 0


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_learning_rates(optimizer: torch.optim.Optimizer, step: int, total: int, warmup: int) -> None:
    """Every group at its peak rate (``base_lr``) times the schedule's factor for ``step``."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * lr_factor(step, total, warmup)


def view_for_step(views: list[str], seed: int, step: int) -> str:
    """The picture view a step trains on: a deterministic draw from (seed, step), so resuming repeats it."""
    pick = torch.Generator().manual_seed(seed * 7919 + step)
    return views[torch.randint(len(views), (1,), generator=pick).item()]


def make_optimizer(model: DualEncoder, cfg: TrainConfig) -> torch.optim.AdamW:
    """Four groups: tower / head parameters, each with or without weight decay (none on 1-D)."""
    heads = {id(p) for m in (model.image_head, model.text_head) for p in m.parameters()} | {id(model.logit_scale)}
    groups: dict[tuple[bool, bool], list] = {(h, d): [] for h in (True, False) for d in (True, False)}
    for param in model.parameters():
        if param.requires_grad:
            groups[(id(param) in heads, param.ndim >= 2)].append(param)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "lr": cfg.head_lr if is_head else cfg.lr,
                "base_lr": cfg.head_lr if is_head else cfg.lr,
                "weight_decay": cfg.weight_decay if decay else 0.0,
            }
            for (is_head, decay), params in groups.items()
            if params
        ]
    )


def embed_batch(model: DualEncoder, data: PreparedData, table: CaptionTable, idx: list[int], view: str | None):
    """Picture and caption embeddings of the pairs ``idx`` of a table."""
    device = model.logit_scale.device
    pictures = table.picture[idx]
    if data.image_features:
        image_emb = model.embed_image_features(data.image_features[view or "plain"][pictures].to(device))
    else:
        pixels = torch.stack(
            [model.vision.preprocess(open_rgb(data.picture_paths[i]), view or "plain") for i in pictures]
        )
        image_emb = model.encode_image(pixels.to(device))
    if table.text_features is not None:
        text_emb = model.embed_text_features(table.text_features[idx].to(device))
    else:
        ids, mask = pad_tokens([table.tokens[i] for i in idx], model.text.tokenizer.pad_token_id)
        text_emb = model.encode_text(ids.to(device), mask.to(device))
    return image_emb, text_emb, pictures.to(device)


@torch.no_grad()
def evaluate_table(model: DualEncoder, data: PreparedData, table: CaptionTable, batch_size: int = 256) -> dict:
    """Retrieval metrics of one split: its captions against its distinct pictures."""
    model.eval()
    pictures = sorted(set(table.picture.tolist()))
    column = {p: i for i, p in enumerate(pictures)}
    image_emb, text_emb = [], []
    for start in range(0, len(table), batch_size):
        idx = list(range(start, min(start + batch_size, len(table))))
        img, txt, _ = embed_batch(model, data, table, idx, "plain")
        image_emb.append(img.float().cpu())
        text_emb.append(txt.float().cpu())
    image_emb, text_emb = torch.cat(image_emb), torch.cat(text_emb)
    first = {}
    for i, p in enumerate(table.picture.tolist()):
        first.setdefault(p, i)
    gallery = image_emb[[first[p] for p in pictures]]
    targets = torch.tensor([column[p] for p in table.picture.tolist()])
    return retrieval_metrics(text_emb @ gallery.t(), targets)


def training_step(
    model: DualEncoder,
    data: PreparedData,
    table: CaptionTable,
    idx: list[int],
    view: str | None,
    optimizer: torch.optim.Optimizer,
    loss_fn: ContrastiveLoss,
    grad_clip: float,
    autocast=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on the pairs ``idx`` (this process's slice of the batch); returns (loss, grad norm).

    Under torch.distributed the loss sees every process's embeddings and gradients are averaged.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    with autocast or nullcontext():
        image_emb, text_emb, ids = embed_batch(model, data, table, idx, view)
        loss = loss_fn(image_emb.float(), text_emb.float(), ids, model.logit_scale)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    _average_gradients(params, _rank_world()[1])
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip) if grad_clip else torch.tensor(0.0)
    optimizer.step()
    return loss.detach(), grad_norm


def train(
    model: DualEncoder,
    data: PreparedData,
    cfg: TrainConfig,
    out_dir: Path,
    resume: bool = False,
    progress: bool = True,
    adapter_info: dict | None = None,
) -> TrainResult:
    """Train ``model``'s trainable parameters; the best epoch's adapter ends up in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world = _rank_world()
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the number of processes ({world})")
    device = model.logit_scale.device
    train_table = data.splits["train"]
    if len(train_table) < cfg.batch_size:
        raise ValueError(f"only {len(train_table)} training pairs: fewer than one batch of {cfg.batch_size}")
    lengths = [len(t) for t in train_table.tokens]
    steps_per_epoch = len(lengths) // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    warmup = max(1, int(cfg.warmup_fraction * total_steps))
    optimizer = make_optimizer(model, cfg)
    loss_fn = ContrastiveLoss()
    views = list(data.image_features) or ["plain"]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    state = {"step": 0, "best_metric": -1.0, "best_epoch": -1, "history": []}
    if resume and (out_dir / CHECKPOINT_NAME).exists():
        state = _load_checkpoint(out_dir / CHECKPOINT_NAME, model, optimizer)
        _truncate_log(out_dir / STEP_METRICS_NAME, state["step"])
        if rank == 0:
            print(f"resuming at step {state['step']} of {total_steps}", file=sys.stderr)
    elif rank == 0:
        (out_dir / STEP_METRICS_NAME).unlink(missing_ok=True)
    log = open(out_dir / STEP_METRICS_NAME, "a", encoding="utf-8") if rank == 0 else None
    started, seconds_before = time.perf_counter(), state.get("seconds", 0.0)  # (earlier processes, if resumed)
    bar = tqdm(
        total=total_steps,
        initial=state["step"],
        desc="train",
        unit="step",
        disable=not progress or rank != 0,
        file=sys.stderr,
    )
    while state["step"] < total_steps:
        epoch, done_in_epoch = divmod(state["step"], steps_per_epoch)
        model.train()
        batches = epoch_batches(lengths, cfg.batch_size, cfg.seed, epoch)
        for batch in batches[done_in_epoch:]:
            step = state["step"]
            tick = time.perf_counter()
            set_learning_rates(optimizer, step, total_steps, warmup)
            view = view_for_step(views, cfg.seed, step)
            loss, grad_norm = training_step(
                model, data, train_table, batch[rank::world], view, optimizer, loss_fn, cfg.grad_clip, autocast
            )
            state["step"] = step + 1
            seconds = time.perf_counter() - tick
            if log:
                record = {
                    "step": step + 1,
                    "epoch": epoch,
                    "loss": round(loss.item(), 5),
                    "lr": optimizer.param_groups[0]["lr"],
                    "temperature": round(1 / model.logit_scale.exp().item(), 5),
                    "grad_norm": round(float(grad_norm), 4),
                    "pairs_per_s": round(cfg.batch_size / seconds, 1),
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
            bar.set_postfix(loss=f"{loss.item():.3f}", pairs_s=f"{cfg.batch_size / seconds:.0f}")
            bar.update(1)
            end_of_epoch = state["step"] % steps_per_epoch == 0
            if end_of_epoch:
                metrics = evaluate_table(model, data, data.splits["val"])
                state["seconds"] = seconds_before + time.perf_counter() - started
                state["history"].append(
                    {
                        "epoch": epoch,
                        "step": state["step"],
                        "seconds": round(state["seconds"], 2),  # training wall time up to this epoch's end
                        **{f"val_{k}": v for k, v in metrics.items()},
                    }
                )
                if metrics[PRIMARY_METRIC] > state["best_metric"]:
                    state["best_metric"], state["best_epoch"] = metrics[PRIMARY_METRIC], epoch
                    if rank == 0:
                        save_adapter(model, out_dir, adapter_info)
                if rank == 0:
                    tqdm.write(
                        f"epoch {epoch + 1}/{cfg.epochs}: val {PRIMARY_METRIC} {metrics[PRIMARY_METRIC]:.1f}"
                        f" (best {state['best_metric']:.1f}, epoch {state['best_epoch'] + 1})",
                        file=sys.stderr,
                    )
                model.train()
            if rank == 0 and (end_of_epoch or state["step"] % cfg.checkpoint_every == 0):
                _save_checkpoint(out_dir / CHECKPOINT_NAME, model, optimizer, state)
    bar.close()
    if log:
        log.close()
    if world > 1:
        dist.barrier()  # every process sees the final adapter files before it goes on
    return TrainResult(
        state["best_epoch"], state["best_metric"], state["history"], time.perf_counter() - started, state["step"]
    )


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients(params: list[torch.Tensor], world: int) -> None:
    if world == 1:
        return
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad)
        param.grad /= world


def _save_checkpoint(path: Path, model: DualEncoder, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Trainable weights + AdamW moments + RNG state + progress, in one file, replaced atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in trainable_state(model).items()}
    for index, moments in optimizer.state_dict()["state"].items():
        for key, value in moments.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"state": json.dumps(state)})
    os.replace(tmp, path)


def _load_checkpoint(path: Path, model: DualEncoder, optimizer: torch.optim.Optimizer) -> dict:
    with safe_open(str(path), framework="pt") as handle:
        state = json.loads(handle.metadata()["state"])
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    missing = set(trainable_state(model)) - set(weights)
    if missing:
        raise ValueError(f"checkpoint {path} does not fit this model (missing {sorted(missing)[:3]} ...)")
    model.load_state_dict(weights, strict=False)
    moments: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            moments.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": moments, "param_groups": optimizer.state_dict()["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return state


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    kept = [
        line for line in path.read_text(encoding="utf-8").splitlines() if line and json.loads(line)["step"] <= step
    ]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
