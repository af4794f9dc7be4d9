"""The user's cache folder for files gendsl can always rebuild (parser tables, the feature
classifiers of sample-quality metrics): $XDG_CACHE_HOME/gendsl, default ~/.cache/gendsl."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder() -> Path | None:
    """The folder, made if missing; None when it cannot be made (no home, a read-only disk):
    callers then rebuild what they would have cached. Not the shared temp folder, where another
    user could plant a pickle that gendsl loads."""
    try:
        home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder = Path(home) / "gendsl"
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home folder
        return None
    return folder
