"""A case (`Case`): a spec and the data files the test writes for it (`DataFile`, `Array`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = "@DATA@"  # replaced by the case folder when the case is written


# ---- cases and their data files ---------------------------------------------------------------

@dataclass(frozen=True)
class Array:
    """One array of a data file: rows, per-row shape, and what its values are."""

    rows: int
    shape: tuple[int, ...]
    values: Literal["normal", "unit", "binary", "labels"]
    classes: int = 0


@dataclass(frozen=True)
class DataFile:
    """A file the test writes under DATA_DIR: `NAME.npy` (one array), `NAME.npz` (named arrays)
    or an image folder `NAME/` (one subfolder of PNGs per named array, `""` for no classes)."""

    name: str
    arrays: tuple[tuple[str, Array], ...]


@dataclass(frozen=True)
class Case:
    """A spec to check, compile, train, sample and evaluate."""

    text: str
    overrides: tuple[str, ...] = ()
    files: tuple[DataFile, ...] = ()
    origin: str = "generated"
    tags: frozenset[str] = frozenset()
    data_problem: bool = False  # a declared type disagrees with its file on purpose (E403 expected)
    path: str = "case.gen"      # where the spec goes in the case folder (reference copies beside it)
    imports: tuple[tuple[str, str], ...] = ()  # other .gen files beside it: (name, text)
    via_cli: bool = False       # train with `gendsl train` (diagram, final sample grid) not the API
    resume: bool = False        # then resume the run for one more round

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        return f"Case(origin={self.origin!r}, overrides={self.overrides!r})\n{self.describe()}"

    def spec_text(self, folder: Path) -> str:
        return self.text.replace(DATA_DIR, folder.as_posix())

    def write(self, folder: Path) -> Path:
        """Write the data files and the spec (and, for a mutated reference, its neighbours)."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.origin.startswith("mutated"):
            copy_references(folder)
        for index, data_file in enumerate(self.files):
            write_data_file(folder, data_file, seed=index)
        for name, text in self.imports:
            (folder / name).write_text(text, encoding="utf-8")
        target = folder / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.spec_text(folder), encoding="utf-8")
        return target

    def describe(self, folder: Path | None = None) -> str:
        """What a failure message shows: origin, overrides, files and the spec text."""
        text = self.spec_text(folder) if folder else self.text
        files = "; ".join(f"{f.name}: " + ", ".join(f"{k or '-'} {a.rows}x{list(a.shape)} {a.values}"
                                                   for k, a in f.arrays) for f in self.files)
        imports = "".join(f"---- {name} ----\n{body}" for name, body in self.imports)
        how = "".join(f"{flag}\n" for flag, on in (("trained by the CLI", self.via_cli),
                                                      ("resumed for a round", self.resume)) if on)
        sets = f"--set {' --set '.join(self.overrides)}\n" if self.overrides else ""
        return (f"origin: {self.origin}\n" + how + sets
                + (f"files: {files}\n" if files else "") + imports + f"---- {self.path} ----\n{text}")


def copy_references(folder: Path) -> None:
    for sub in ("specs", "tests/specs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for path in (ROOT / sub).glob("*.gen"):
            shutil.copy(path, folder / sub / path.name)


def array_values(array: Array, rng) -> Any:
    import numpy as np

    shape = (array.rows, *array.shape)
    if array.values == "labels":
        return rng.integers(0, array.classes, size=array.rows).astype(np.int64)
    if array.values == "binary":
        return (rng.random(shape) < 0.4).astype(np.float32)
    if array.values == "unit":
        return rng.random(shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def write_data_file(folder: Path, data_file: DataFile, seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    target = folder / data_file.name
    if data_file.name.endswith(".npy"):  # every other one in Fortran order (np.load keeps it)
        values = array_values(data_file.arrays[0][1], rng)
        np.save(target, np.asfortranarray(values) if seed % 2 else values)
    elif data_file.name.endswith(".npz"):
        np.savez(target, **{key: array_values(array, rng) for key, array in data_file.arrays})
    else:
        write_image_folder(target, data_file, rng)


def write_image_folder(target: Path, data_file: DataFile, rng) -> None:
    from PIL import Image

    for key, array in data_file.arrays:
        sub = target / key if key else target
        sub.mkdir(parents=True, exist_ok=True)
        pixels = (array_values(array, rng) * 255).astype("uint8")
        for i, image in enumerate(pixels):
            Image.fromarray(image, mode="RGB" if image.ndim == 3 else "L").save(sub / f"{i:03d}.png")
