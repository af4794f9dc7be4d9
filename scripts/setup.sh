#!/usr/bin/env bash
# Set up everything gendsl needs on a fresh Debian/Ubuntu-like machine (Python 3.10+):
# graphviz's `dot` (apt) when missing, a virtualenv in .venv, PyTorch 2.13.0 and gendsl itself.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
  echo "setup: installing graphviz (for diagrams)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq graphviz >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq graphviz >/dev/null; } \
    || echo "setup: could not install graphviz; diagrams will be written as .dot files"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import gendsl, torch, pytest, hypothesis" >/dev/null 2>&1; then
  echo "setup: installing PyTorch 2.13.0 and gendsl (a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev]"
fi
echo "setup: ok ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
