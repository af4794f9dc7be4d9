#!/usr/bin/env bash
# The main job, from a fresh clone: set up (scripts/setup.sh), then check, draw and train the
# reference VAE (specs/vae.gen, one epoch on binarized MNIST), sample it and evaluate it.
# Writes runs/vae/: diagram.svg, checkpoint.pt, samples/final.png, metrics.csv, losses.png.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
G=.venv/bin/gendsl
set -x
$G check specs/vae.gen
$G render specs/vae.gen -o runs/vae/diagram.png
$G train specs/vae.gen --epochs 1 --out runs/vae --force
$G sample runs/vae -n 64 --mean -o runs/vae/samples.png
$G evaluate runs/vae --metric elbo --metric nll --k 100
