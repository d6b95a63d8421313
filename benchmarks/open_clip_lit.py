"""mlilt against the reference trainer open_clip, trained LiT-style on the same towers, data and machine.

Both sides train a frozen EfficientNet-Lite0 image tower (mlilt's offline ImageNet weights, through mlilt's own
loader) and the multilingual-e5-small text tower (mlilt's offline folder, mean pooling), 256-d linear heads, on
every Emoji-CLDR Swahili caption of split ``train``, for the same number of epochs and batch size. Both are then
scored with mlilt's ``retrieval_metrics`` on split ``test``, primary Swahili captions (282 pictures). Compared:
time per epoch, peak resident memory (each side is its own process, measured from outside with ``wait4``), test
text->image / image->text R@1 and R@10.

* open_clip side: open_clip's own trainer, ``open_clip_train.main.main([...])`` (CSV dataset, ``--lock-image``,
  its AdamW, cosine schedule, ``ClipLoss``, train/val transforms), on a ``CustomTextCLIP`` registered with
  ``open_clip.add_model_config``: vision = timm ``tf_efficientnet_lite0`` (avg pool, 1280 -> 256 linear), text =
  HF tower from the local e5 folder (``hf_pooler_type`` mean_pooler, ``hf_proj_type`` linear, open_clip's
  ``HFTokenizer`` on the same folder, context length 64). The whole model's state dict (both towers' weights) is
  saved once and passed as ``--pretrained FILE``. ``--text-mode layernorm`` adds ``--lock-text`` (open_clip then
  trains only the text tower's LayerNorms, and the heads); ``full`` trains the whole text tower.
* mlilt side: ``mlilt adapt --lang sw --method M --epochs E --batch-size B --no-reference --quiet --out DIR`` per
  method (default ``adapters`` and the like-for-like ``--text-mode``), read back from its ``metrics.json``.

The BatchNorm trap. ``--lock-image-freeze-bn-stats`` is never used: open_clip 3.3.0 swaps timm's
``BatchNormAct2d`` for a plain ``FrozenBatchNorm2d``, which drops the fused ReLU6, makes every picture's feature
identical and collapses training. Without it, ``lock_image_tower(unlocked_groups=0, freeze_bn_stats=False)`` only
sets ``requires_grad=False`` - and open_clip's ``train_one_epoch`` calls ``model.train()`` at the start of every
epoch, which puts the locked trunk in train mode: its BatchNorms normalise with the statistics of each batch and
overwrite their ImageNet running statistics, and timm's head dropout (0.2 on the pooled features) is active. So
this benchmark wraps ``lock_image_tower`` to pin the trunk in eval mode (its ``train()`` always means
``train(False)``), checks with a forward hook that every trunk forward ran in eval mode, and checks after
training that the trunk's parameters and BatchNorm buffers are bit-identical to the initial ones (all written
into the results). ``--no-pin-image-eval`` runs open_clip as it ships, to show the drift.

Reading the numbers. "s / epoch" is open_clip's ``train_one_epoch`` (data loading, EfficientNet forward on every
picture, text tower, optimiser) and mlilt's per-epoch training time from ``metrics.json`` (which includes its
validation pass; the EfficientNet features come from mlilt's feature cache, computed once per picture - a cache
miss shows up in the process wall time and in ``image_feature_cache``). Peak RSS is the whole process (model
build, training, test evaluation). "process CPU s" (user + system) is less sensitive than wall time to other jobs
on the machine. The recipes differ where open_clip has no equivalent, and the results record it: open_clip uses
one lr for towers and heads (mlilt's heads use 1e-3), the diagonal ``ClipLoss`` (mlilt counts every caption of the
same picture in a batch as a positive), its RandomResizedCrop(0.9-1) training transform and a 224 resize + centre
crop at test (mlilt: timm's crop 0.875, no augmentation), and pads every caption to 64 tokens (mlilt pads to the
longest in the batch). mlilt reports the epoch with the best validation R@1, open_clip its last epoch.

Benchmark-only dependency (not in pyproject.toml; ``--no-deps`` keeps this venv's torch/torchvision/timm):

    pip install --no-deps open-clip-torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 braceexpand==0.1.7 webdataset==1.0.2

Usage (an open_clip epoch recomputes the frozen EfficientNet on every picture of every step):

    python benchmarks/open_clip_lit.py                                    # 1 epoch, full text tower, both sides
    python benchmarks/open_clip_lit.py --epochs 3 --text-mode layernorm --mlilt-methods adapters,layernorm
    python benchmarks/open_clip_lit.py --max-pairs 256 --batch-size 32    # smoke test
"""

# requirements-bench.txt (benchmark-only; install with --no-deps so torch/torchvision/timm stay as they are):
#   open-clip-torch==3.3.0
#   ftfy==6.3.1
#   wcwidth==0.9.4
#   braceexpand==0.1.7
#   webdataset==1.0.2

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlilt.adapt import training_records
from mlilt.config import ModelConfig, TrainConfig, load_run_config
from mlilt.data.validate import validate_records
from mlilt.evaluation.metrics import retrieval_metrics
from mlilt.evaluation.study import adapt_command
from mlilt.towers.offline_e5 import ensure_e5_small
from mlilt.towers.offline_effnet import load_efficientnet_lite0

from _common import peak_rss_mib, write_json

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "open_clip_lit.json"
PIP_LINE = (
    "pip install --no-deps open-clip-torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 braceexpand==0.1.7 webdataset==1.0.2"
)
MODEL_NAME = "mlilt-effnetlite0-e5small"  # the open_clip model config this script registers
EMBED_DIM, CONTEXT_LENGTH = ModelConfig().embed_dim, ModelConfig().text.max_length  # mlilt's defaults
# open_clip has one lr for everything: the like-for-like comparison in docs/benchmarks.md gives both sides 3e-4
# (mlilt's default recipe trains the tower at TrainConfig().lr after a heads warm-up at head_lr).
COMPARISON_LR = 3e-4
RECIPE = TrainConfig()  # mlilt's defaults: weight decay, warm-up share and clipping are the same on both sides
WEIGHT_DECAY, WARMUP_FRACTION, GRAD_CLIP = RECIPE.weight_decay, RECIPE.warmup_fraction, RECIPE.grad_clip
METRICS = [
    ("t->i R@1", "text_to_image_R@1"),
    ("t->i R@10", "text_to_image_R@10"),
    ("i->t R@1", "image_to_text_R@1"),
    ("i->t R@10", "image_to_text_R@10"),
]


# --------------------------------------------------------------------------------------------------------------
# Shared helpers


def _records(lang: str, max_pairs: int | None, seed: int):
    """The records mlilt adapt trains and tests on: same loader, same scarcity subset, same validation."""
    cfg = load_run_config("default", {"data.lang": lang, "data.max_train_captions": max_pairs, "train.seed": seed})
    records, _ = validate_records(training_records(cfg), cfg.data.max_caption_chars, cfg.data.max_bad_fraction)
    train = [r for r in records if r.split == "train"]
    test = [r for r in records if r.split == "test" and r.primary and r.lang in (None, lang)]
    return train, test


def _run_child(command: list[str], env: dict, log: Path) -> dict:
    """Run a process, echo and keep its output, return wall seconds, exit code and its own peak RSS (wait4)."""
    print(f"[{time.strftime('%H:%M:%S')}] {' '.join(command)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        for line in proc.stdout:
            sink.write(line)
            if _worth_echoing(line):
                sys.stderr.write("    " + line)
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage: its peak RSS, not this process's
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8")[-3000:]
        raise RuntimeError(f"{command[:4]} failed with exit code {proc.returncode}; log {log}:\n{tail}")
    return {
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),  # less sensitive than wall time to other jobs
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def _worth_echoing(line: str) -> bool:
    """Skip open_clip's model/params dump and torch's INFO logs on the terminal (the log file keeps them)."""
    dump = line[:1].isspace() or line.startswith(")") or "| INFO |   " in line
    return not (dump or line[:1] == "I" and line[1:5].isdigit())


# --------------------------------------------------------------------------------------------------------------
# open_clip side, step 1 (own process): model config, the whole model's initial state dict, CSV, test list


def _model_config(e5_dir: Path) -> dict:
    return {
        "embed_dim": EMBED_DIM,
        "vision_cfg": {
            "timm_model_name": "tf_efficientnet_lite0",
            "timm_model_pretrained": False,  # weights come from mlilt's loader, through --pretrained
            "timm_pool": "avg",
            "timm_proj": "linear",
            "image_size": 224,
        },
        "text_cfg": {
            "hf_model_name": str(e5_dir),
            "hf_tokenizer_name": str(e5_dir),
            "hf_pooler_type": "mean_pooler",
            "hf_proj_type": "linear",
            "context_length": CONTEXT_LENGTH,
        },
        "custom_text": True,
    }


def open_clip_prepare(args: argparse.Namespace) -> None:
    import open_clip
    import torch
    from safetensors import safe_open

    work = Path(args.work_dir)
    train, test = _records(args.lang, args.max_pairs, args.seed)
    e5_dir = ensure_e5_small()
    config_dir = work / "model_configs"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / f"{MODEL_NAME}.json").write_text(json.dumps(_model_config(e5_dir), indent=2), encoding="utf-8")
    open_clip.add_model_config(config_dir)

    model = open_clip.create_model(MODEL_NAME, pretrained=None)  # HF tower: from_pretrained(e5 folder)
    effnet = load_efficientnet_lite0(num_classes=0)  # mlilt's own loader: offline ImageNet weights, timm keys
    model.visual.trunk.load_state_dict(effnet.state_dict(), strict=True)
    with safe_open(str(e5_dir / "model.safetensors"), "pt") as weights:  # the text tower really holds e5
        key = "encoder.layer.0.attention.self.query.weight"
        if not torch.equal(model.text.transformer.state_dict()[key], weights.get_tensor(key)):
            raise RuntimeError("open_clip's HF text tower does not hold the e5 weights of " + str(e5_dir))
    torch.save(model.state_dict(), work / "init.pt")
    torch.save({k: v.clone() for k, v in model.visual.trunk.state_dict().items()}, work / "trunk_init.pt")

    with open(work / "train.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["filepath", "title"])
        writer.writerows([r.image, r.caption] for r in train)
    import pandas as pd

    read_back = pd.read_csv(work / "train.csv", sep="\t")  # exactly as open_clip's CsvDataset reads it
    bad = [(r.caption, got) for r, got in zip(train, read_back["title"].tolist()) if str(got) != r.caption]
    if len(read_back) != len(train) or bad:
        raise RuntimeError(f"captions do not survive open_clip's CSV reader: {bad[:5]}")
    (work / "test.json").write_text(
        json.dumps([{"image": r.image, "image_id": r.image_id, "caption": r.caption} for r in test]),
        encoding="utf-8",
    )
    print(f"open_clip prepare: {len(train)} train pairs, {len(test)} test captions, e5 {e5_dir}", file=sys.stderr)


# --------------------------------------------------------------------------------------------------------------
# open_clip side, step 2 (own process): open_clip's trainer, then mlilt's retrieval metrics


def _pin_eval(module) -> None:
    """Make ``module.train(mode)`` always mean eval, also when a parent's ``train()`` recurses into it."""
    from torch import nn

    def train(mode: bool = True):
        return nn.Module.train(module, False)

    module.train = train


def open_clip_train(args: argparse.Namespace) -> None:
    import open_clip
    import open_clip_train.main as oc_main
    import torch
    from PIL import Image

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work_dir)
    open_clip.add_model_config(work / "model_configs")
    n_pairs = sum(1 for _ in open(work / "train.csv", encoding="utf-8")) - 1
    device = "cuda" if torch.cuda.is_available() else "cpu"
    steps = n_pairs // args.batch_size * args.epochs

    captured, epoch_seconds, rss_after_epoch = {}, [], []
    trunk_calls = {"eval": 0, "train": 0}

    create = oc_main.create_model_and_transforms

    def create_and_capture(*a, **k):
        out = create(*a, **k)
        captured["model"], _, captured["preprocess_val"] = out
        return out

    lock = open_clip.CustomTextCLIP.lock_image_tower

    def lock_and_pin(self, unlocked_groups=0, freeze_bn_stats=False):
        if freeze_bn_stats:
            raise RuntimeError("--lock-image-freeze-bn-stats breaks timm's BatchNormAct2d; never used here")
        lock(self, unlocked_groups=unlocked_groups, freeze_bn_stats=freeze_bn_stats)
        if args.pin_image_eval:
            _pin_eval(self.visual.trunk)
        trunk = self.visual.trunk

        def count(module, inputs):
            trunk_calls["train" if any(m.training for m in trunk.modules()) else "eval"] += 1

        trunk.register_forward_pre_hook(count)

    train_one_epoch = oc_main.train_one_epoch

    def timed_epoch(*a, **k):
        started = time.perf_counter()
        out = train_one_epoch(*a, **k)
        epoch_seconds.append(round(time.perf_counter() - started, 2))
        rss_after_epoch.append(round(peak_rss_mib(), 1))
        return out

    oc_main.create_model_and_transforms = create_and_capture
    open_clip.CustomTextCLIP.lock_image_tower = lock_and_pin
    oc_main.train_one_epoch = timed_epoch

    argv = [
        "--model", MODEL_NAME,
        "--pretrained", str(work / "init.pt"),
        "--train-data", str(work / "train.csv"),
        "--dataset-type", "csv",
        "--csv-img-key", "filepath",
        "--csv-caption-key", "title",
        "--lock-image",
        "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size),
        "--lr", str(args.lr or COMPARISON_LR),
        "--wd", str(WEIGHT_DECAY),
        "--warmup", str(max(1, int(WARMUP_FRACTION * steps))),
        "--grad-clip-norm", str(GRAD_CLIP),
        "--workers", str(args.workers),
        "--precision", "fp32" if device == "cpu" else "amp_bf16",  # mlilt: fp32 on CPU, bf16 autocast on CUDA
        "--device", device,
        "--seed", str(args.seed),
        "--image-mean", "0.5", "0.5", "0.5",  # tf_efficientnet_lite0's pretrained config
        "--image-std", "0.5", "0.5", "0.5",
        "--image-interpolation", "bicubic",
        "--save-frequency", "0",  # only the final checkpoint
        "--logs", str(work / "logs"),
        "--name", "open_clip_lit",
        "--log-every-n-steps", str(args.log_every),
    ]  # fmt: skip
    if args.text_mode == "layernorm":
        argv.append("--lock-text")  # unlocked_layers=0, freeze_layer_norm=False: LayerNorms + head train
    started = time.perf_counter()
    if oc_main.main(argv) not in (None, 0):
        raise RuntimeError("open_clip_train.main.main returned an error")
    train_wall = time.perf_counter() - started
    model, preprocess = captured["model"], captured["preprocess_val"]
    peak_after_training = round(peak_rss_mib(), 1)

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    trunk_init = torch.load(work / "trunk_init.pt", weights_only=True)
    trunk_now = model.visual.trunk.state_dict()
    drift = {
        kind: max(
            ((trunk_now[k].float().cpu() - v.float()).abs().max().item() for k, v in trunk_init.items() if pick(k)),
            default=0.0,
        )
        for kind, pick in (
            ("bn_running_stats", lambda k: k.endswith(("running_mean", "running_var"))),
            ("bn_num_batches_tracked", lambda k: k.endswith("num_batches_tracked")),
            ("parameters", lambda k: not k.endswith(("running_mean", "running_var", "num_batches_tracked"))),
        )
    }

    # Evaluation: open_clip's encoders and val preprocess, mlilt's retrieval metrics.
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    test = json.loads((work / "test.json").read_text(encoding="utf-8"))
    pictures = list(dict.fromkeys(t["image_id"] for t in test))
    column = {p: i for i, p in enumerate(pictures)}
    path_of = {t["image_id"]: t["image"] for t in test}
    started = time.perf_counter()
    model.eval()
    image_emb, text_emb = [], []
    with torch.no_grad():
        for start in range(0, len(pictures), 64):
            batch = [preprocess(Image.open(path_of[p])) for p in pictures[start : start + 64]]
            image_emb.append(model.encode_image(torch.stack(batch).to(device), normalize=True).float().cpu())
        captions = [t["caption"] for t in test]
        for start in range(0, len(captions), 256):
            tokens = tokenizer(captions[start : start + 256]).to(device)
            text_emb.append(model.encode_text(tokens, normalize=True).float().cpu())
    similarity = torch.cat(text_emb) @ torch.cat(image_emb).t()
    targets = torch.tensor([column[t["image_id"]] for t in test])
    metrics = retrieval_metrics(similarity, targets)

    result = {
        "open_clip_version": open_clip.__version__,
        "device": device,
        "text_mode": args.text_mode,
        "train_pairs": n_pairs,
        "steps": steps,
        "argv": argv,
        "epoch_seconds": epoch_seconds,
        "train_seconds": round(train_wall, 1),  # main(): model build, data, epochs, checkpoint save
        "test_eval_seconds": round(time.perf_counter() - started, 1),
        "test": metrics,
        "parameters": {"trainable": trainable, "total": total},
        "logit_scale": round(model.logit_scale.exp().item(), 3),
        "image_tower_pinned_eval": args.pin_image_eval,
        "image_trunk_forwards": trunk_calls,
        "image_trunk_max_abs_change": drift,
        "peak_rss_mb_self": round(peak_rss_mib(), 1),
        "peak_rss_mb_after_training": peak_after_training,
        "peak_rss_mb_after_epoch": rss_after_epoch,
    }
    if device == "cuda":
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    write_json(Path(args.side_out), result)


# --------------------------------------------------------------------------------------------------------------
# Orchestration: each side in its own process


def _child_env(args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    return env


def run_open_clip(args: argparse.Namespace, work: Path) -> dict:
    me = [sys.executable, str(Path(__file__).resolve()), "--work-dir", str(work), "--lang", args.lang]
    common = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    if args.max_pairs:
        common += ["--max-pairs", str(args.max_pairs)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    env = _child_env(args)
    prep = _run_child([*me, *common, "--side", "open_clip-prepare"], env, work / "open_clip-prepare.log")
    side_out = work / "open_clip.json"
    extra = ["--text-mode", args.text_mode, "--workers", str(args.workers), "--log-every", str(args.log_every)]
    if args.lr:
        extra += ["--lr", str(args.lr)]
    if not args.pin_image_eval:
        extra.append("--no-pin-image-eval")
    run = _run_child(
        [*me, *common, *extra, "--side", "open_clip-train", "--side-out", str(side_out)], env, work / "open_clip.log"
    )
    result = json.loads(side_out.read_text(encoding="utf-8"))
    return result | run | {"prepare_wall_seconds": prep["wall_seconds"]}


def run_mlilt(args: argparse.Namespace, method: str, work: Path) -> dict:
    out = work / f"mlilt-{method}"
    common = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    command = adapt_command(args.lang, method, out, *common, "--no-reference")
    if args.max_pairs:
        command += ["--max-captions", str(args.max_pairs)]
    if args.lr:
        command += ["--lr", str(args.lr)]
    command += args.mlilt_args.split()
    run = _run_child(command, _child_env(args), work / f"mlilt-{method}.log")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    cumulative = [h["seconds"] for h in metrics["history"]]  # training wall time up to each epoch's end
    log = (work / f"mlilt-{method}.log").read_text(encoding="utf-8")
    cache = next((line for line in log.splitlines() if line.startswith("image feature cache:")), "")
    return run | {
        "method": method,
        "epoch_seconds": [round(b - a, 2) for a, b in zip([0.0, *cumulative], cumulative)],
        "train_seconds": metrics["train_seconds"],
        "total_seconds": metrics["total_seconds"],
        "peak_rss_mb_self": metrics["peak_rss_mb"],
        "test": metrics["test"],
        "best_epoch": metrics["best_epoch"],
        "splits": metrics["splits"],
        "parameters": metrics["parameters"]["total"],
        "image_feature_cache": cache.removeprefix("image feature cache:").strip(),
        "command": command[2:],
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def table(results: dict) -> str:
    """Markdown: one row per side, then the ratios of each mlilt method against open_clip."""
    oc = results["open_clip"]
    rows = [("open_clip " + oc["text_mode"], oc)] + [(f"mlilt {m}", r) for m, r in results["mlilt"].items()]
    head = [
        "side",
        "trainable",
        "s / epoch",
        "process wall s",
        "process CPU s",
        "peak RSS MB",
        *(name for name, _ in METRICS),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows:
        params = r["parameters"]["trainable"]
        cells = [
            name,
            f"{params / 1e6:.2f}M",
            f"{_mean(r['epoch_seconds']):.1f}",
            f"{r['wall_seconds']:.0f}",
            f"{r['cpu_seconds']:.0f}" if "cpu_seconds" in r else "n/a",
            f"{r['peak_rss_mb']:.0f}",
            *(f"{r['test'][key]:.1f}" for _, key in METRICS),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| mlilt vs open_clip | epoch speed-up | RSS ratio | " + " | ".join(f"Δ {n}" for n, _ in METRICS) + " |",
        "|---|---|---|" + "---|" * len(METRICS),
    ]
    for method, r in results["mlilt"].items():
        speed = _mean(oc["epoch_seconds"]) / _mean(r["epoch_seconds"])
        memory = r["peak_rss_mb"] / oc["peak_rss_mb"]
        deltas = [f"{r['test'][key] - oc['test'][key]:+.1f}" for _, key in METRICS]
        lines.append(f"| {method} | {speed:.1f}x | {memory:.2f} | " + " | ".join(deltas) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mlilt-args",
        default="",
        help="more `mlilt adapt` flags, e.g. '--head-warmup-epochs 0' (random heads, like open_clip)",
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs on both sides (open_clip: ~7 min each here)")
    parser.add_argument(
        "--text-mode",
        choices=("full", "layernorm"),
        default="full",
        help="what open_clip trains in the text tower (besides the heads)",
    )
    parser.add_argument(
        "--mlilt-methods",
        default=None,
        help="comma-separated mlilt methods (default: adapters and the --text-mode one)",
    )
    parser.add_argument("--batch-size", type=int, default=RECIPE.batch_size, help="pairs per step on both sides")
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help=f"open_clip's single lr (default {COMPARISON_LR}, the docs' comparison; mlilt's recipe: {RECIPE.lr}); "
        "if given, also mlilt's tower lr (its heads stay at the recipe's)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads of each side (default: torch's)")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="open_clip dataloader workers (0: decode in the training process, counted in its RSS)",
    )
    parser.add_argument(
        "--max-pairs",
        type=int,
        default=None,
        help="train on at most N pairs on both sides (mlilt's --max-captions subset): smoke tests",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lang", default="sw")
    parser.add_argument("--sides", default="open_clip,mlilt", help="which sides to run (for partial reruns)")
    parser.add_argument(
        "--no-pin-image-eval",
        dest="pin_image_eval",
        action="store_false",
        help="let open_clip's model.train() put the locked EfficientNet in train mode, as it ships",
    )
    parser.add_argument("--log-every", type=int, default=20, help="open_clip's --log-every-n-steps")
    parser.add_argument("--work-dir", default=None, help="scratch folder (default: a fresh temporary one)")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch folder (checkpoints, logs)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON")
    parser.add_argument("--side", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--side-out", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.side == "open_clip-prepare":
        open_clip_prepare(args)
        return 0
    if args.side == "open_clip-train":
        open_clip_train(args)
        return 0
    methods = (
        args.mlilt_methods.split(",") if args.mlilt_methods else list(dict.fromkeys(["adapters", args.text_mode]))
    )
    sides = set(args.sides.split(","))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="open_clip_lit-"))
    work.mkdir(parents=True, exist_ok=True)
    previous = (
        json.loads(args.out.read_text(encoding="utf-8"))
        if args.out.exists() and sides != {"open_clip", "mlilt"}
        else {}
    )
    results = {
        "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("side", "side_out")
        },
        "pip": PIP_LINE,
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
        "open_clip": previous.get("open_clip"),
        "mlilt": previous.get("mlilt", {}),
    }
    try:
        if "mlilt" in sides:
            results["mlilt"] = {m: run_mlilt(args, m, work) for m in methods}
        if "open_clip" in sides:
            results["open_clip"] = run_open_clip(args, work)
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    if results["open_clip"] and results["mlilt"]:
        oc = results["open_clip"]
        for method, r in results["mlilt"].items():
            if int(r["test"]["num_pictures"]) != int(oc["test"]["num_pictures"]) or int(
                r["test"]["num_captions"]
            ) != int(oc["test"]["num_captions"]):
                print(f"WARNING: test sets differ (mlilt {method} vs open_clip)", file=sys.stderr)
            if r["splits"]["train"] != oc["train_pairs"]:
                print(
                    f"WARNING: train pairs differ: mlilt {r['splits']['train']}, open_clip {oc['train_pairs']}",
                    file=sys.stderr,
                )
        results["table"] = table(results)
        print(results["table"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
