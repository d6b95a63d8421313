#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh), lint, and run the whole test suite: the real offline towers, the subprocess and
# torchrun runs, a wheel built and installed into a fresh venv, and the demo in headless Chromium.
# A developer's fast loop instead: .venv/bin/python -m pytest -m "not slow and not integration and not browser"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The demo's browser test drives Debian's Chromium (never a browser playwright downloads).
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
