#!/usr/bin/env bash
# Set up everything gendsl needs on a fresh Debian/Ubuntu-like machine (Python 3.10+):
# graphviz's `dot` (apt) when missing, a virtualenv in .venv, PyTorch 2.13.0 and gendsl itself
# (with its test tools, and mlflow-skinny for `train --mlflow`), and the npm packages of the VS Code
# extension (Node.js from apt when missing).
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v dot >/dev/null 2>&1; then
  echo "setup: installing graphviz (for diagrams)"
  $SUDO apt-get install -y -qq graphviz >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq graphviz >/dev/null; } \
    || echo "setup: could not install graphviz; diagrams will be written as .dot files"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
# (Re)install when pyproject.toml changed since the last install (new dependencies, entry points).
STAMP=.venv/.gendsl-installed
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || ! .venv/bin/python -c "import gendsl, torch, pytest, hypothesis, importlib.util as u; assert u.find_spec('mlflow')" >/dev/null 2>&1; then
  echo "setup: installing PyTorch 2.13.0 and gendsl (a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev,mlflow]"
  echo "$WANT" > "$STAMP"
fi
# An editable install leaves gendsl's own modules without bytecode, and where PYTHONDONTWRITEBYTECODE
# is set (as on these machines) every process would compile all of them again: about 0.1 s of
# each `gendsl check` (bench/README.md). Only changed files are recompiled; a stale file is only slower.
.venv/bin/python -m compileall -q gendsl >/dev/null

# The VS Code extension's packages (its grammar's tests run VS Code's TextMate engine; vsce packages it).
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing Node.js and npm (for the VS Code extension)"
  $SUDO apt-get install -y -qq nodejs npm >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq nodejs npm >/dev/null; }
fi
if [ ! -d editors/vscode/node_modules ] || [ editors/vscode/package-lock.json -nt editors/vscode/node_modules ]; then
  echo "setup: installing the VS Code extension's npm packages"
  (cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
echo "setup: ok ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
