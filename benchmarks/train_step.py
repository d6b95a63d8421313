"""Time and memory of one training step, per text tuning method, with mlilt's own training step.

For every tower set and text method (``frozen``, ``layernorm``, ``bitfit``, ``adapters``, ``lora``, ``full``;
the vision tower is frozen, as in mlilt's default recipe) it builds the model with :func:`mlilt.model.assemble`,
the optimizer with :func:`mlilt.train.make_optimizer`, a :class:`mlilt.data.prepare.PreparedData` and calls
:func:`mlilt.train.training_step` (AdamW step included) on batches drawn by ``epoch_batches``, as ``train`` does.

Tower sets:

- ``offline``: the built-in multilingual-e5-small text tower (real weights, the default recipe's settings)
  with EfficientNet-Lite0-sized picture features (1280).
- ``base``: an XLM-R-base-sized text tower (``XLMRobertaConfig`` defaults, 12 layers of hidden 768, with
  xlm-roberta-base's vocabulary of 250,002 and 514 positions; random weights) with ViT-B-sized picture
  features (768); tokenizer: the e5 one (the same XLM-R SentencePiece vocabulary).

What a step sees is what mlilt's training sees:

- Captions: the real Swahili Emoji-CLDR training captions, tokenised by the tower (realistic lengths).
- Pictures: a frozen vision tower's features are computed once and cached before training, so a step only
  indexes a (pictures, width) table. Here that table is random (same width), and the vision tower is never
  loaded; its parameters are counted on the meta device for the "share of the model" column.
- ``frozen`` text: mlilt caches the text features too, so the step trains the heads on a (captions, hidden)
  table; here that table is random (same width), the tower is still built (it is in memory during training).

Measured after ``--warmup`` steps, over ``--steps`` steps: median step time with its 10th / 90th percentiles,
samples per second (batch / median), peak memory and trainable parameters. Peak memory is the process's
peak resident set size on CPU (``ru_maxrss``, which only grows: every tower set and method runs in its own
subprocess of this script) or ``torch.cuda.max_memory_allocated`` on CUDA. Each method's time and memory are
also given relative to ``full`` of the same tower set in the same run.

    python benchmarks/train_step.py                                   # both tower sets, every method
    python benchmarks/train_step.py --towers offline --methods adapters,full --steps 5 --warmup 1
    python benchmarks/train_step.py --device cuda --bf16 --batch-size 256 --base-batch-size 128
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import timm
import torch
import transformers
from torch import nn
from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

from mlilt.config import TrainConfig, load_run_config
from mlilt.data.emoji_cldr import load_emoji_cldr
from mlilt.data.prepare import CaptionTable, PreparedData, epoch_batches
from mlilt.model import DualEncoder, assemble
from mlilt.towers.offline_e5 import ensure_e5_small
from mlilt.towers.registry import build_text_tower
from mlilt.towers.text import TextTower
from mlilt.training.loop import make_optimizer, training_step
from mlilt.training.loss import ContrastiveLoss
from mlilt.tuning.registry import method_names

from _common import peak_rss_mib, pick_device, write_json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
METHODS = method_names("text")
LANG = "sw"
EXIT_OVER_MEMORY = 75  # a worker stopped by its memory watchdog
MIB = 1024 * 1024


@dataclass(frozen=True)
class TowerSet:
    text: str  # description
    vision: str  # the timm architecture whose features are stood in for (counted on the meta device)
    image_dim: int


TOWER_SETS = {
    "offline": TowerSet("offline:multilingual-e5-small", "tf_efficientnet_lite0", 1280),
    "base": TowerSet("xlm-roberta-base (random init)", "deit_base_patch16_224", 768),  # DeiT-B = ViT-B/16
}
IMAGE_NOTE = "picture features are random (frozen vision tower, cached features: a step only indexes them)"


@dataclass(frozen=True)
class Trial:
    """One (tower set, method, batch size) measurement, run in a worker process."""

    towers: str
    method: str
    batch_size: int
    steps: int
    warmup: int
    device: str
    bf16: bool = False
    threads: int | None = None
    seed: int = 0
    longest_first: bool = False  # each epoch's longest batches first (worst case for memory)
    memory_limit_gb: float | None = None  # CPU: stop the worker once its RSS passes this


# --- building the model and the data, as mlilt's training does


class CachedFeatures(nn.Module):
    """Stands in for the frozen vision tower: training only ever uses its cached features."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features


def e5_tokenizer():
    """The offline e5's fast XLM-R tokenizer (the folder ``build_text_tower`` loads it from)."""
    return AutoTokenizer.from_pretrained(str(ensure_e5_small()))


def build_text(towers: str, method: str, device: str) -> tuple[TextTower, object]:
    """The text tower of a tower set and the (model) config to assemble it with, the default recipe's.

    The random XLM-R-base is created on ``device`` (initialising 278M weights on a GPU takes no time).
    """
    model_cfg = load_run_config("default").model
    model_cfg.text.method = method
    if towers == "offline":
        return build_text_tower(model_cfg.text), model_cfg
    text_cfg = model_cfg.text
    config = XLMRobertaConfig(vocab_size=250002, max_position_embeddings=514)  # as benchmarks/parameter_table.py
    with torch.device(device):
        encoder = XLMRobertaModel(config, add_pooling_layer=False)
    tower = TextTower(
        encoder,
        e5_tokenizer(),
        text_cfg.pooling,
        text_cfg.prefix or "",
        text_cfg.max_length,
        name=TOWER_SETS["base"].text,
    )
    return tower, model_cfg


def vision_parameters(towers: str) -> int:
    """Parameters of the (frozen, not loaded) vision tower, counted on the meta device."""
    with torch.device("meta"):
        model = timm.create_model(TOWER_SETS[towers].vision, pretrained=False, num_classes=0)
    return sum(p.numel() for p in model.parameters())


def build_model(trial: Trial) -> DualEncoder:
    text, model_cfg = build_text(trial.towers, trial.method, trial.device)
    vision = CachedFeatures(TOWER_SETS[trial.towers].image_dim)
    return assemble(vision, text, model_cfg, seed=trial.seed)


def prepare_data(model: DualEncoder, seed: int) -> PreparedData:
    """The train table of real captions (tokenised by the tower) with random cached features."""
    records = [r for r in load_emoji_cldr(LANG) if r.split == "train"]
    picture_ids = sorted({r.image_id for r in records})
    row = {pid: i for i, pid in enumerate(picture_ids)}
    captions = [r.caption for r in records]
    tokens = model.text.token_ids(captions)
    table = CaptionTable(captions, torch.tensor([row[r.image_id] for r in records]), tokens)
    generator = torch.Generator().manual_seed(seed)
    if model.text_frozen:  # mlilt caches a frozen text tower's features once, before training
        table.text_features = torch.randn(len(table), model.text.hidden_size, generator=generator)
    features = torch.randn(len(picture_ids), model.vision.num_features, generator=generator)
    return PreparedData(picture_ids, [""] * len(picture_ids), {"train": table}, image_features={"plain": features})


def batch_stream(lengths: list[int], batch_size: int, seed: int, longest_first: bool) -> Iterator[list[int]]:
    """Batches as training draws them, epoch after epoch; with replacement when a batch exceeds the captions."""
    if batch_size > len(lengths):
        generator = torch.Generator().manual_seed(seed)
        while True:
            yield torch.randint(len(lengths), (batch_size,), generator=generator).tolist()
    epoch = 0
    while True:
        batches = epoch_batches(lengths, batch_size, seed, epoch)
        if longest_first:
            batches.sort(key=lambda b: -max(lengths[i] for i in b))
        yield from batches
        epoch += 1


# --- measuring


def start_memory_watchdog(limit_gb: float) -> None:
    """Exit (code EXIT_OVER_MEMORY) as soon as this process's resident memory passes ``limit_gb`` GiB."""
    page, limit = os.sysconf("SC_PAGE_SIZE"), limit_gb * 1024 * MIB

    def watch():
        while True:
            with open("/proc/self/statm") as handle:
                if int(handle.read().split()[1]) * page > limit:
                    print(f"resident memory passed {limit_gb} GiB: stopping", file=sys.stderr, flush=True)
                    os._exit(EXIT_OVER_MEMORY)
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory_kind(device_type: str) -> str:
    return "cuda max_memory_allocated" if device_type == "cuda" else "peak RSS of the worker process"


def peak_memory_mib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / MIB if device.type == "cuda" else peak_rss_mib()


def parameters(model: DualEncoder, towers: str) -> dict:
    """Trainable parameters (text tower, heads + temperature, all) and their share of the whole model."""
    report = model.parameter_report()
    whole = report["total"].total + vision_parameters(towers)
    trainable = report["total"].trainable
    return {
        "text_trainable": report["text"].trainable,
        "text_total": report["text"].total,
        "heads_trainable": trainable - report["text"].trainable,
        "trainable": trainable,
        "model_total": whole,  # with the frozen vision tower
        "trainable_percent": 100 * trainable / whole,
    }


def timed_steps(model: DualEncoder, data: PreparedData, trial: Trial, device: torch.device) -> dict:
    """Run warm-up + timed steps of the library's ``training_step``; times, losses and padded widths."""
    table = data.splits["train"]
    train_cfg = load_run_config("default").train
    optimizer, loss_fn = make_optimizer(model, train_cfg), ContrastiveLoss()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if trial.bf16 else None
    lengths = [len(t) for t in table.tokens]
    batches = batch_stream(lengths, trial.batch_size, trial.seed, trial.longest_first)
    model.train()
    seconds, losses, widths = [], [], []
    for step in range(trial.warmup + trial.steps):
        idx = next(batches)
        sync(device)
        tick = time.perf_counter()
        loss, _ = training_step(model, data, table, idx, "plain", optimizer, loss_fn, train_cfg.grad_clip, autocast)
        sync(device)
        if step >= trial.warmup:
            seconds.append(time.perf_counter() - tick)
            losses.append(loss.item())
            widths.append(max(lengths[i] for i in idx))
    return {"seconds": seconds, "losses": losses, "widths": widths}


def summarise(trial: Trial, run: dict) -> dict:
    seconds = np.asarray(run["seconds"])
    median = float(np.median(seconds))
    return {
        "step_ms_median": 1e3 * median,
        "step_ms_p10": 1e3 * float(np.percentile(seconds, 10)),
        "step_ms_p90": 1e3 * float(np.percentile(seconds, 90)),
        "step_ms_mean": 1e3 * float(seconds.mean()),
        "samples_per_s": trial.batch_size / median,
        "padded_width_mean": float(np.mean(run["widths"])),
        "loss_first": run["losses"][0],
        "loss_last": run["losses"][-1],
    }


def measure(trial: Trial) -> dict:
    """Build everything and time the steps (the worker's job): one result row."""
    if trial.memory_limit_gb and trial.device == "cpu":
        start_memory_watchdog(trial.memory_limit_gb)
    if trial.threads:
        torch.set_num_threads(trial.threads)
    torch.manual_seed(trial.seed)
    device = torch.device(trial.device)
    started = time.perf_counter()
    model = build_model(trial).to(device)
    data = prepare_data(model, trial.seed)
    setup = {"setup_s": time.perf_counter() - started, "memory_after_setup_mib": peak_memory_mib(device)}
    train_captions = len(data.splits["train"])
    row = {
        **asdict(trial),
        "status": "ok",
        "text_model": model.text.name,
        "image_dim": model.vision.num_features,
        "train_captions": train_captions,
        "with_replacement": trial.batch_size > train_captions,
        "torch_threads": torch.get_num_threads(),
        **parameters(model, trial.towers),
        **setup,
    }
    try:
        run = timed_steps(model, data, trial, device)
    except torch.OutOfMemoryError as err:
        return {**row, "status": "oom", "error": str(err).splitlines()[0]}
    return {
        **row,
        **summarise(trial, run),
        "peak_memory_mib": peak_memory_mib(device),
        "memory_kind": memory_kind(device.type),
    }


def run_trial(trial: Trial, timeout: float | None = None) -> dict:
    """Measure ``trial`` in a fresh subprocess of this script (so peak RSS is this trial's alone)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--worker", json.dumps(asdict(trial)), "--result", str(result)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**asdict(trial), "status": "timeout", "error": f"no result within {timeout} s"}
        if proc.returncode == 0 and result.exists():
            return json.loads(result.read_text())
    status = {EXIT_OVER_MEMORY: "over-memory-limit", -9: "killed"}.get(proc.returncode, "error")
    return {**asdict(trial), "status": status, "returncode": proc.returncode, "error": proc.stderr[-2000:]}


# --- reporting


def machine_info(device: str) -> dict:
    info = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "device": device,
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 1024**3, 1), cuda=torch.version.cuda)
    return info


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def markdown_table(headers: list[str], rows: list[list]) -> str:
    align = ["---" if i < 2 else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def split_list(text: str, known: list[str]) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    unknown = set(items) - set(known)
    if unknown:
        raise SystemExit(f"unknown {sorted(unknown)}; choose from {', '.join(known)}")
    return items


def add_ratios(rows: list[dict]) -> None:
    """Each ok row's step time and peak memory relative to ``full`` of the same tower set."""
    full = {r["towers"]: r for r in rows if r["method"] == "full" and r["status"] == "ok"}
    for r in rows:
        ref = full.get(r["towers"])
        if r["status"] == "ok" and ref:
            r["time_vs_full"] = r["step_ms_median"] / ref["step_ms_median"]
            r["memory_vs_full"] = r["peak_memory_mib"] / ref["peak_memory_mib"]


def table_rows(rows: list[dict]) -> list[list]:
    out = []
    for r in rows:
        head = [r["towers"], r["method"], r["batch_size"]]
        if r["status"] != "ok":
            out.append(head + [r["status"]] + ["—"] * (len(TABLE_HEADERS) - 4))
            continue
        ratio = {k: f"{r[k]:.3g}×" if k in r else "—" for k in ("time_vs_full", "memory_vs_full")}
        out.append(
            head
            + [
                f"{r['trainable']:,} ({r['trainable_percent']:.2f}%)",
                f"{r['step_ms_median']:.0f}",
                f"{r['step_ms_p10']:.0f}–{r['step_ms_p90']:.0f}",
                f"{r['samples_per_s']:.1f}",
                f"{r['peak_memory_mib']:,.0f}",
                ratio["time_vs_full"],
                ratio["memory_vs_full"],
            ]
        )
    return out


TABLE_HEADERS = [
    "towers",
    "text method",
    "batch",
    "trainable (share of model)",
    "step ms (median)",
    "p10–p90 ms",
    "samples/s",
    "peak MiB",
    "time vs full",
    "memory vs full",
]


# --- command line


def trial_from_args(args: argparse.Namespace, towers: str, method: str, batch_size: int, device: str, **kw) -> Trial:
    """A trial with the command line's common settings (steps, warm-up, device, bf16, threads, seed)."""
    return Trial(towers, method, batch_size, args.steps, args.warmup, device, args.bf16, args.threads, args.seed, **kw)


def batch_size_for(towers: str, args: argparse.Namespace, device: str) -> int:
    override = getattr(args, f"{towers}_batch_size")
    if override:
        return override
    return 32 if towers == "base" and device == "cpu" else args.batch_size


def add_common_arguments(parser: argparse.ArgumentParser, towers: str) -> None:
    """Flags shared with benchmarks/largest_batch.py."""
    parser.add_argument("--towers", default=towers, help="comma list of tower sets: offline, base")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma list of text methods")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--bf16", action="store_true", help="CUDA only: bf16 autocast (as mlilt trains on CUDA)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, help="seconds per worker before it is given up")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, "offline,base")
    parser.add_argument(
        "--batch-size", type=int, default=TrainConfig().batch_size, help="pairs per step (default: the recipe's)"
    )
    parser.add_argument("--offline-batch-size", type=int, help="override for the offline set")
    parser.add_argument("--base-batch-size", type=int, help="override for the base set (default: 32 on CPU)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--memory-limit-gb", type=float, help="CPU: stop a worker whose RSS passes this (GiB)")
    parser.add_argument("--out", type=Path, default=RESULTS / "train_step.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one Trial as JSON
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def resolve_device_args(args: argparse.Namespace) -> str:
    """The device the flags ask for, checked (CUDA present when asked for; bf16 only on CUDA)."""
    device = pick_device(args.device).type
    if args.bf16 and device != "cuda":
        raise SystemExit("--bf16 is for CUDA (mlilt trains in fp32 on CPU)")
    return device


def main() -> None:
    args = parse_args()
    if args.worker:
        write_json(args.result, measure(Trial(**json.loads(args.worker))))
        return
    device = resolve_device_args(args)
    towers, methods = split_list(args.towers, list(TOWER_SETS)), split_list(args.methods, METHODS)
    payload = {"benchmark": "train_step", "machine": machine_info(device), "note": IMAGE_NOTE, "rows": []}
    for tower_set in towers:
        for method in methods:
            batch_size = batch_size_for(tower_set, args, device)
            trial = trial_from_args(args, tower_set, method, batch_size, device, memory_limit_gb=args.memory_limit_gb)
            print(f"{tower_set} / {method} / batch {trial.batch_size} ...", file=sys.stderr, flush=True)
            payload["rows"].append(run_trial(trial, args.timeout))
            add_ratios(payload["rows"])
            write_json(args.out, payload)  # after every row: a partial run still leaves its results
    print(markdown_table(TABLE_HEADERS, table_rows(payload["rows"])))
    print(
        f"\n{device}, {args.steps} timed steps after {args.warmup} warm-up; peak memory = {memory_kind(device)}; "
        f"{IMAGE_NOTE}."
    )
    for r in payload["rows"]:
        if r["status"] != "ok":
            print(f"{r['towers']} / {r['method']}: {r['status']}: {r.get('error', '')[-300:]}", file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
