#!/usr/bin/env bash
# Screenshots of .gen specs highlighted by the extension's grammar: scripts/preview.js writes the
# HTML page (TextMate scopes from VS Code's own engine, coloured by a Dark+-like theme), headless
# Chromium renders it to PNG, the window sized to the page (lines of code and legend).
#   editors/vscode/scripts/screenshot.sh [-o DIR] SPEC.gen...   -> DIR/highlight-SPEC.png each
# DIR defaults to editors/vscode/out/. CHROMIUM=/path/to/chrome picks the browser.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../out"
if [ "${1:-}" = "-o" ]; then out="${2:?-o needs a directory}"; shift 2; fi
if [ $# -eq 0 ] || [[ "$1" == -* ]]; then
  echo "usage: $0 [-o DIR] SPEC.gen..." >&2
  exit 2
fi

browser="${CHROMIUM:-}"
if [ -z "$browser" ]; then
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null 2>&1; then browser="$name"; break; fi
  done
fi
if [ -z "$browser" ] || ! command -v "$browser" >/dev/null 2>&1; then
  echo "screenshot.sh: Chromium not found (${browser:-tried chromium, chromium-browser, google-chrome})." >&2
  echo "  Install it with: sudo apt-get install -y chromium   (Debian/Ubuntu; snap's chromium also works)" >&2
  echo "  or point CHROMIUM at a Chrome/Chromium binary: CHROMIUM=/path/to/chrome $0 ..." >&2
  exit 1
fi
if ! command -v node >/dev/null 2>&1; then
  echo "screenshot.sh: node not found; scripts/setup.sh installs it (or: sudo apt-get install -y nodejs npm)" >&2
  exit 1
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for spec in "$@"; do
  name="$(basename "$spec" .gen)"
  html="$work/$name.html"
  png="$out/highlight-$name.png"
  node "$here/preview.js" "$spec" -o "$html"
  # the page's own estimate of its size; else ~20px a line, 1400px wide
  size="$(sed -n 's/.*<meta name="gendsl-preview-size" content="\([0-9]*,[0-9]*\)">.*/\1/p' "$html")"
  [ -n "$size" ] || size="1400,$(( $(wc -l <"$spec") * 20 + 80 ))"
  "$browser" --headless --disable-gpu --no-sandbox --hide-scrollbars --no-first-run \
    --user-data-dir="$work/profile" --force-device-scale-factor=1 \
    --screenshot="$png" --window-size="$size" "file://$html" >"$work/chromium.log" 2>&1 \
    || { cat "$work/chromium.log" >&2; echo "screenshot.sh: Chromium failed on $spec" >&2; exit 1; }
  [ -s "$png" ] || { cat "$work/chromium.log" >&2; echo "screenshot.sh: no screenshot of $spec" >&2; exit 1; }
  echo "$png ($size)"
done
