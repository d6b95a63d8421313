#!/usr/bin/env bash
# Training-step benchmarks on a GPU machine, in one go (about 7 minutes at most, no network).
#
#   bash scripts/bootstrap.sh          # once, beforehand (needs network): .venv, fonts, CLDR
#   bash benchmarks/gpu.sh             # results in ${OUT:-benchmarks/results/gpu}
#
# 1. train_step.py, bf16 autocast, every text method: offline towers at batch 256, base towers at batch 128.
# 2. largest_batch.py on the offline towers, for adapters, lora and full (time allows ~18 trials): the largest
#    batch within 16 GiB of max_memory_allocated, doubling from 512 up to 16384 (frozen trains only the heads
#    on cached features: any batch fits; layernorm and bitfit keep the same activations as adapters).
# Each part has its own time limit; both scripts write their JSON after every row, so a part cut short by
# its limit still leaves what it measured. Exits non-zero when CUDA is missing or a part fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
OUT=${OUT:-benchmarks/results/gpu}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"

nvidia-smi --query-gpu=name,memory.total --format=csv || { echo "gpu.sh: nvidia-smi failed: no NVIDIA GPU here" >&2; exit 2; }
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu.sh: torch sees no CUDA device (torch $("$PY" -c 'import torch; print(torch.__version__)')); stopping" >&2
  exit 2
fi

# First use only: render the Emoji-CLDR pictures and convert e5 into mlilt's cache (outside the timed parts).
timeout 60 "$PY" -c "from mlilt.data.emoji_cldr import load_emoji_cldr; from mlilt.towers.offline_e5 import \
ensure_e5_small; load_emoji_cldr('sw'); ensure_e5_small()" || { echo "gpu.sh: data / e5 preparation failed" >&2; exit 2; }

status=0
part() {  # part NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.log, remember a failure
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" 2>"$OUT/$name.log" | tee "$OUT/$name.md"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "gpu.sh: $name exited $rc (124 = time limit); partial results in $OUT/$name.json, log $OUT/$name.log" >&2
    status=1
  fi
}

part train_step_offline 100 "$PY" benchmarks/train_step.py --device cuda --bf16 --towers offline \
  --batch-size 256 --steps 20 --warmup 3 --timeout 60 --out "$OUT/train_step_offline.json"
part train_step_base 120 "$PY" benchmarks/train_step.py --device cuda --bf16 --towers base \
  --base-batch-size 128 --steps 20 --warmup 3 --timeout 60 --out "$OUT/train_step_base.json"
part largest_batch 180 "$PY" benchmarks/largest_batch.py --device cuda --bf16 --towers offline \
  --methods adapters,lora,full --budget-gb 16 --start 512 --max-batch 16384 --no-bisect \
  --timeout 60 --out "$OUT/largest_batch.json"
echo "gpu.sh: results in $OUT"
exit $status
