"""Checkpoints: written atomically (temp file + rename), read without unpickling arbitrary
objects (torch.load(weights_only=True)), tagged with the spec's hash."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from gendsl.diagnostics import GendslError, error

FORMAT = 1


def save(path: Path, state: dict) -> None:
    """Write `state` so that a crash at any moment leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"format": FORMAT, **state}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: Path, expected_hash: str | None = None, map_location=None) -> dict:
    """Read a checkpoint; a missing, corrupt or foreign file, or a changed spec, is a diagnostic."""
    if not path.exists():
        raise GendslError(error("E408", f"no checkpoint at {path}",
                                hint="train first (gendsl train SPEC --out DIR), or point at the run folder"))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file; all mean "not a checkpoint"
        raise GendslError(error("E408", f"cannot read checkpoint {path}: {type(exc).__name__}",
                                hint="the file is damaged or not a gendsl checkpoint; retrain or restore it")) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise GendslError(error("E408", f"{path} is not a gendsl checkpoint (format {FORMAT})",
                                hint="checkpoints are written by gendsl train"))
    if expected_hash is not None and state.get("hash") != expected_hash:
        raise GendslError(error("E407", f"the spec or its params changed since {path} was written "
                                f"(hash {state.get('hash')} there, {expected_hash} now)",
                                hint="resume with the same spec and --set values, or train into a new --out"))
    return state


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
