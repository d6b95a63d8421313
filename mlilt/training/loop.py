"""One readable contrastive training loop: schedule, clipping, validation, checkpoints and resume.

- AdamW; warm-up then cosine decay (:mod:`mlilt.training.schedule`); no weight decay on 1-D parameters.
- Validation (text -> image retrieval on the val split) after every epoch; the best epoch's
  adapter is kept in the run folder.
- A checkpoint (:mod:`mlilt.training.checkpoint`) is written every ``checkpoint_every`` steps and at each
  epoch's end. ``resume=True`` continues from it and ends exactly where an uninterrupted run would have.
- Under ``torchrun`` each process takes its slice of every global batch; the loss gathers all
  embeddings and gradients are averaged, so the result matches a single-process run.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mlilt.config import TrainConfig
from mlilt.constants import CHECKPOINT_NAME, STEP_METRICS_NAME
from mlilt.data.prepare import CaptionTable, PreparedData, epoch_batches
from mlilt.errors import ConfigError, DataError, DivergedError
from mlilt.evaluation.metrics import PRIMARY_METRIC
from mlilt.evaluation.retrieval import embed_pairs, evaluate_table
from mlilt.hub.adapter_files import save_adapter
from mlilt.model import DualEncoder
from mlilt.threads import keep_fitted
from mlilt.training.checkpoint import load_checkpoint, save_checkpoint, truncate_log
from mlilt.training.distributed import average_gradients, barrier, rank_world
from mlilt.training.loss import ContrastiveLoss
from mlilt.training.schedule import set_learning_rates, view_for_step


@dataclass
class TrainResult:
    best_epoch: int
    best_metric: float
    history: list[dict] = field(default_factory=list)  # one entry per epoch
    seconds: float = 0.0  # training wall time, over every process of a resumed run
    steps: int = 0
    skipped_steps: int = 0  # steps with a non-finite loss or gradient (skip_nonfinite_steps)


def is_finite(loss: torch.Tensor, grad_norm: torch.Tensor) -> bool:
    """Whether a step's loss and gradient norm are finite numbers (a NaN anywhere in the gradient shows here)."""
    return bool(torch.isfinite(loss) and torch.isfinite(grad_norm))


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

    Under torch.distributed the loss sees every process's embeddings and gradients are averaged. A step whose
    loss or gradient is not finite updates nothing (see :func:`is_finite`); the caller decides what follows.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    with autocast or nullcontext():
        image_emb, text_emb, ids = embed_pairs(model, data, table, idx, view)
        loss = loss_fn(image_emb.float(), text_emb.float(), ids, model.logit_scale)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(params)
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip or float("inf"))  # inf: measured, not clipped
    if is_finite(loss, grad_norm):
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
    rank, world = rank_world()
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size {cfg.batch_size} must be divisible by the number of processes ({world})")
    device = model.logit_scale.device
    train_table = data.splits["train"]
    if len(train_table) < cfg.batch_size:
        raise DataError(f"only {len(train_table)} training pairs: fewer than one batch of {cfg.batch_size}")
    lengths = train_table.tokens.lengths.tolist()
    steps_per_epoch = len(lengths) // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    warmup = max(1, int(cfg.warmup_fraction * total_steps))
    optimizer = make_optimizer(model, cfg)
    loss_fn = ContrastiveLoss()
    views = list(data.image_features) or ["plain"]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    state = {"step": 0, "best_metric": -1.0, "best_epoch": -1, "history": [], "skipped_steps": 0}
    if resume and (out_dir / CHECKPOINT_NAME).exists():
        state = load_checkpoint(out_dir / CHECKPOINT_NAME, model, optimizer)
        truncate_log(out_dir / STEP_METRICS_NAME, state["step"])
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
            keep_fitted()
            step = state["step"]
            tick = time.perf_counter()
            set_learning_rates(optimizer, step, total_steps, warmup)
            view = view_for_step(views, cfg.seed, step)
            loss, grad_norm = training_step(
                model, data, train_table, batch[rank::world], view, optimizer, loss_fn, cfg.grad_clip, autocast
            )
            if not is_finite(loss, grad_norm):
                if not cfg.skip_nonfinite_steps:
                    raise DivergedError(
                        f"training diverged at step {step + 1} of {total_steps} (epoch {epoch + 1}): the loss is "
                        f"{loss.item():.4g} and the gradient norm {float(grad_norm):.4g}, so no weight was updated "
                        f"with them and no result is reported. Start again with a lower learning rate (--lr, now "
                        f"{cfg.lr:g}; the heads' {cfg.head_lr:g}) in another --out (or delete {out_dir}), or pass "
                        "--skip-nonfinite-steps to skip such steps (they are counted)."
                    )
                state["skipped_steps"] = state.get("skipped_steps", 0) + 1
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
            end_of_epoch = state["step"] % steps_per_epoch == 0 or state["step"] == total_steps
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
                save_checkpoint(out_dir / CHECKPOINT_NAME, model, optimizer, state)
            if state["step"] == total_steps:  # max_steps reached inside an epoch
                break
    bar.close()
    if log:
        log.close()
    barrier()  # every process sees the final adapter files before it goes on
    total_seconds = seconds_before + time.perf_counter() - started
    return TrainResult(
        state["best_epoch"],
        state["best_metric"],
        state["history"],
        total_seconds,
        state["step"],
        state.get("skipped_steps", 0),
    )
