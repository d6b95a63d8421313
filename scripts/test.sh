#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh) and run the whole test suite, the real offline towers included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
