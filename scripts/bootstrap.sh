#!/usr/bin/env bash
# Set up everything mlilt needs on a fresh Debian/Ubuntu machine: the two Debian data packages
# (Noto Color Emoji, Unicode CLDR) and a virtual environment in .venv with mlilt installed.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=()
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need_debs+=(fonts-noto-color-emoji)
[ -d /usr/share/unicode/cldr/common/annotations ] || need_debs+=(unicode-cldr-core)
if [ ${#need_debs[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${need_debs[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_debs[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.mlilt-installed
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing mlilt and its dependencies into .venv (first time: a few minutes)"
  .venv/bin/pip install -q --upgrade pip
  # torch 2.14.1 + torchvision 0.29.1 import together with timm (torch 2.13's CPU wheel does not).
  .venv/bin/pip install -q "torch==2.14.1" "torchvision==0.29.1"
  .venv/bin/pip install -q -e ".[demo,test]"
  # LAION's CLIP_benchmark, for the test that checks mlilt's clip-benchmark protocol against it; --no-deps
  # because it asks for open_clip and torch versions of its own (its retrieval metrics need neither).
  .venv/bin/pip install -q --no-deps "clip-benchmark==1.6.2"
  echo "$want" > "$stamp"
fi
