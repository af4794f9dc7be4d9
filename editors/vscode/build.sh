#!/usr/bin/env bash
# Package the VS Code extension as editors/vscode/gendsl.vsix (npm ci, then @vscode/vsce).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
npx vsce package --allow-missing-repository -o gendsl.vsix
