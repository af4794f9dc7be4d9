"""Data plans: the `data` lines of a spec, the variables they declare and the files they read."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from gendsl.library.sources import SOURCES
from gendsl.types import TensorType
from tests.strategies.builder import Builder
from tests.strategies.case import DATA_DIR, ROOT, Array, DataFile
from tests.strategies.entry_options import POOLS, entry_call
from tests.strategies.gen_text import literal, real, type_text
from tests.strategies.picker import Picker
from tests.strategies.pipelines import factorizations


# ---- data plans -------------------------------------------------------------------------------

@dataclass
class DataVar:
    name: str
    type: TensorType
    unit: bool           # values in [0, 1]
    line: int            # which `data` line (variables on one line are paired)


@dataclass
class DataPlan:
    vars: list[DataVar] = field(default_factory=list)
    modes_of: set[str] = field(default_factory=set)  # variables of ring or grid data (known modes)

    @property
    def modes(self) -> bool:
        """Is the modeled variable from ring or grid data (so coverage applies)?"""
        return self.main().name in self.modes_of

    def main(self) -> DataVar:
        return next(v for v in self.vars if v.type.kind != "cat")

    def labels(self, of: DataVar) -> list[DataVar]:
        return [v for v in self.vars if v.type.kind == "cat" and v.line == of.line]

    def second(self, of: DataVar) -> DataVar | None:
        return next((v for v in self.vars if v.type.kind != "cat" and v is not of), None)


SYNTHETIC = ["ring", "grid", "moons", "circles", "swiss_roll"]


def declared_shape(pick: Picker, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a data line declares for a source's shape: itself, or another with as many values."""
    if pick.chance(75):
        return shape
    return pick.choice(factorizations(math.prod(shape)))


def data_line(b: Builder, variables: list[DataVar], source: str) -> None:
    line = ", ".join(f"{v.name}: {type_text(v.type)}" for v in variables)
    b.data.append(f"data {line} from {source}")


def input_decl(var: DataVar | tuple[str, TensorType], pick: Picker) -> str:
    """A network input naming a variable: untyped (takes the variable's type) or typed."""
    name, t = (var.name, var.type) if isinstance(var, DataVar) else var
    return name if pick.chance(60) else f"{name}: {type_text(t)}"


def plan_synthetic(pick: Picker, b: Builder, plan: DataPlan, name: str) -> None:
    source = pick.choice(SYNTHETIC)
    call = entry_call(pick, SOURCES, source, optional=50, given={"n": str(pick.choice(POOLS["n"]))})
    shape = pick.choice([(2,)] * 6 + [(1, 2), (2, 1)])
    var = DataVar(name, real(*shape), unit=False, line=len(b.data))
    plan.vars.append(var)
    if source in ("ring", "grid"):
        plan.modes_of.add(name)
    data_line(b, [var], call.text)
    b.tag(f"source:{source}")


def plan_digits(pick: Picker, b: Builder, plan: DataPlan, name: str) -> None:
    binarize = pick.chance(40)
    options = []
    if binarize:
        options.append("binarize=true")
    if pick.chance(25):
        options.append(f"classes={literal(sorted(pick.some(range(10), 1, 4)))}")
    shape = declared_shape(pick, (64,)) if pick.chance(60) else pick.choice([(8, 8), (1, 8, 8)])
    kind = "bin" if binarize and pick.chance(70) else "real"
    var = DataVar(name, TensorType(kind=kind, shape=shape), unit=True, line=len(b.data))
    variables = [var]
    if pick.chance(40):
        variables.append(DataVar(b.fresh("y"), TensorType(kind="cat", classes=10), unit=False, line=var.line))
    plan.vars += variables
    data_line(b, variables, f"digits({', '.join(options)})")
    b.tag("source:digits")


def file_array(pick: Picker, rows: int) -> tuple[Array, TensorType]:
    """An array for a file and the type that declares it."""
    shape = pick.choice([(pick.integer(2, 8),), (1, pick.integer(3, 6), pick.integer(3, 6)),
                         (pick.integer(2, 3), 4, 4), (pick.integer(2, 4), pick.integer(2, 4))])
    values = pick.choice(["normal", "unit", "binary"])
    kind = "bin" if values == "binary" and pick.chance(60) else "real"
    return Array(rows, shape, values), TensorType(kind=kind, shape=shape)


def problem_shape(pick: Picker, b: Builder, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Sometimes a declared shape that does not fit the file (a genuine data problem: E403)."""
    if pick.chance(6):
        b.data_problem = True
        b.tag("data:mismatch")
        return (math.prod(shape) + 1,)
    return declared_shape(pick, shape)


def plan_npy(pick: Picker, b: Builder, plan: DataPlan, name: str) -> None:
    rows = pick.choice([20, 40])
    array, t = file_array(pick, rows)
    file = f"{b.fresh('f')}.npy"
    b.files.append(DataFile(file, (("x", array),)))
    var = DataVar(name, t.with_shape(problem_shape(pick, b, t.shape)), unit=array.values != "normal",
                  line=len(b.data))
    plan.vars.append(var)
    data_line(b, [var], f'npy(path="{DATA_DIR}/{file}")')
    b.tag("source:npy")


def plan_npz(pick: Picker, b: Builder, plan: DataPlan, name: str) -> None:
    """An npz file: one to three arrays (data, a second paired array, labels), in one of three
    layouts (plain keys split by permutation, KEY_SPLIT keys, or train/valid/test keys)."""
    layout = pick.choice(["plain", "key_split", "splits"])
    rows = {"train": 24, "valid": 8, "test": 8}
    main_array, main_type = file_array(pick, 40)
    entries = [("x", main_array, main_type, name)]
    if layout != "splits":
        if pick.chance(40):
            classes = pick.choice([2, 3, 10])
            labels = Array(40, (), "labels", classes)
            entries.append(("y", labels, TensorType(kind="cat", classes=classes), b.fresh("y")))
        if pick.chance(30):
            other, other_type = file_array(pick, 40)
            entries.append(("b", other, other_type, b.fresh("b")))
    if pick.chance(20) and len(entries) > 1:
        entries = [entries[0]] + pick.some(entries[1:], 0, len(entries) - 1)  # a subset, in order
    arrays: list[tuple[str, Array]] = []
    for key, array, _, _ in entries:
        if layout == "plain":
            arrays.append((key, array))
        elif layout == "key_split":
            arrays += [(f"{key}_{split}", replace(array, rows=n)) for split, n in rows.items()]
        else:
            arrays += [(split, replace(array, rows=n)) for split, n in rows.items()]
    file = f"{b.fresh('f')}.npz"
    b.files.append(DataFile(file, tuple(arrays)))
    line = len(b.data)
    variables = [DataVar(var, t.with_shape(problem_shape(pick, b, t.shape)) if t.kind != "cat" else t,
                         unit=array.values != "normal", line=line) for _, array, t, var in entries]
    plan.vars += variables
    keys = ""
    if layout != "splits" and (pick.chance(40) or len(entries) < 3):
        keys = ", keys=" + literal([key for key, *_ in entries])
    data_line(b, variables, f'npz(path="{DATA_DIR}/{file}"{keys})')
    b.tag("source:npz", f"npz:{layout}")


def plan_image_folder(pick: Picker, b: Builder, plan: DataPlan, name: str) -> None:
    side = pick.choice([4, 6])
    grayscale = pick.chance(70)
    classes = pick.choice([0, 2, 3])
    image = (side, side) if grayscale else (side, side, 3)
    keys = [f"c{i}" for i in range(classes)] or [""]
    per = 24 // len(keys)
    folder = b.fresh("images")
    b.files.append(DataFile(folder, tuple((k, Array(per, image, "unit")) for k in keys)))
    size = pick.choice([None, side, 3])
    out_side = side if size is None else size
    channels = 1 if grayscale else 3
    line = len(b.data)
    var = DataVar(name, real(*problem_shape(pick, b, (channels, out_side, out_side))), unit=True, line=line)
    variables = [var]
    if classes and pick.chance(60):
        variables.append(DataVar(b.fresh("y"), TensorType(kind="cat", classes=classes), unit=False, line=line))
    options = [f'path="{DATA_DIR}/{folder}"'] + ([f"size={size}"] if size else []) + \
        ([] if grayscale and pick.chance(50) else [f"grayscale={literal(grayscale)}"])
    plan.vars += variables
    data_line(b, variables, f"image_folder({', '.join(options)})")
    b.tag("source:image_folder")


def shared_data() -> Path:
    return Path(os.environ.get("GENDSL_DATA_DIR", ROOT.parent / "shared" / "data"))


def plan_shared(pick: Picker, b: Builder, plan: DataPlan, name: str) -> None:
    """The MNIST sources of ../shared/data (default paths): binarized, grayscale, or the pairs."""
    source = pick.choice(["binarized_mnist", "mnist_idx", "paired_mnist"])
    line = len(b.data)
    if source == "binarized_mnist":
        variables = [DataVar(name, TensorType(kind="bin", shape=pick.choice([(784,), (1, 28, 28)])), True, line)]
    elif source == "mnist_idx":
        variables = [DataVar(name, real(1, 28, 28), True, line)]
        if pick.chance(50):
            variables.append(DataVar(b.fresh("y"), TensorType(kind="cat", classes=10), False, line))
    else:
        variables = [DataVar(name, TensorType(kind="bin", shape=(1, 28, 28)), True, line),
                     DataVar(b.fresh("b"), real(1, 28, 28), True, line)]
    plan.vars += variables
    data_line(b, variables, f"{source}()")
    b.tag(f"source:{source}")


PLANNERS = {"synthetic": (plan_synthetic, 8), "digits": (plan_digits, 6), "npy": (plan_npy, 3),
            "npz": (plan_npz, 4), "image_folder": (plan_image_folder, 2),
            "shared": (plan_shared, 1)}


def planner_weights() -> dict[str, int]:
    """The MNIST sources load 50,000 rows and evaluate on 10,000 (seconds per case): drawn only
    with GENDSL_TRAINS_SHARED=1 (the slow run sets it) and when the files are there."""
    weights = {kind: weight for kind, (_, weight) in PLANNERS.items()}
    if os.environ.get("GENDSL_TRAINS_SHARED") != "1" or not (shared_data() / "binarized_mnist.npz").exists():
        weights["shared"] = 0
    return weights


def draw_data(pick: Picker, b: Builder, lines: int = 1) -> DataPlan:
    plan = DataPlan()
    for i in range(lines):
        kind = pick.weighted(planner_weights())
        PLANNERS[kind][0](pick, b, plan, b.fresh(pick.choice(["x", "x", "x", "img", "a"]) if i == 0 else "b"))
    if lines > 1:
        b.tag("data:separate_lines")
    return plan
