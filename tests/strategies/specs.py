"""Hypothesis strategies that draw well-typed .gen specs (the "checked means trains" property).

Two sources of cases:

- `generated_cases()` builds a spec by construction. A data plan (synthetic sources with a small
  n, digits, npy/npz files and image folders that the test writes, one or two `data` lines), a
  model family (autoencoder, VAE, observe with a latent, mixture, GAN, translation, flow, MADE,
  PixelCNN, diffusion, EBM), networks whose pipelines are drawn layer by layer from LAYERS with
  the per-sample type tracked by each entry's own rule, expressions in bodies and losses, a train
  block (one minimize or named steps; optimizers, schedules and settings), samples and an
  evaluate block. Each registry entry's options come from its signature
  (gendsl.library.signature.parameters) and are validated by the entry's rule before use, so the
  drawn spec is well typed by construction.
- `mutated_cases()` edits a reference spec (specs/*.gen, tests/specs/*.gen): `--set` params,
  layers swapped for others from the registry, widths, optimizers, schedules, settings, metrics,
  distributions, statements dropped or duplicated. Big data sources become tiny files of the same
  shape, so that every case trains in a fraction of a second.

A case (`Case`) is plain data: the spec text with DATA_DIR where the test's folder goes, the
`--set` overrides, the files to write, and tags naming the constructs it uses (coverage counts).
The constructs of the bugs issue 10 started from (KNOWN_BUGS) are drawn too, unless
GENDSL_TRAINS_KNOWN=0.
"""

from __future__ import annotations

import inspect
import math
import os
import random
import re
import shutil
import types
import typing
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal

from hypothesis import strategies as st

from gendsl.library.distributions import DISTRIBUTIONS
from gendsl.library.entries import Registry
from gendsl.library.functions import FUNCTIONS
from gendsl.library.layers import ACTIVATIONS, LAYERS
from gendsl.library.signature import EntryError, bind, call_rule, parameters
from gendsl.library.sources import SOURCES
from gendsl.library.training import (BETA_SCHEDULES, INITS, METRICS, OPTIMIZERS, PROCESSES, SAMPLERS,
                                     SCHEDULES, SETTINGS, metric_needs)
from gendsl.types import TensorType

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = "@DATA@"  # replaced by the case folder when the case is written

# Constructs of the bugs that issue 10 started from. Each must now train or be refused with a
# diagnostic, so they are drawn by default (a few percent of the cases, tagged with these names);
# GENDSL_TRAINS_KNOWN=0 leaves them out, to hunt for other bugs while one of them regresses.
KNOWN_BUGS = {
    "known:index_batch": "`h[0]` on a per-sample value indexes the batch",
    "known:reduce_in_net": "`sum`/`mean` inside a network reduce over the batch",
    "known:scalar_times_vector": "a per-sample scalar times a vector does not broadcast per sample",
    "known:shared_attend": "a shared tensor as keys/values of attend/hard_attend, or in concat",
    "known:langevin_two_inputs": "Langevin on an energy with two inputs",
    "known:parameter_free_step": "a step over a network without parameters",
    "known:method_options": "keyword options of f.inverse / q.reverse / q.loss are ignored",
    "known:scalar_categorical": "`Categorical(logits = 0)`",
    "known:made_parallel": "MADE masks of parallel masked paths",
}


def known_enabled() -> bool:
    return os.environ.get("GENDSL_TRAINS_KNOWN", "1") != "0"


# ---- random choices ---------------------------------------------------------------------------

class Picker:
    """The random choices a spec needs: from hypothesis (`draw`) or from a `random.Random`."""

    def __init__(self, draw: Callable | None = None, rng: random.Random | None = None):
        self.draw, self.rng = draw, rng

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi)) if self.draw else self.rng.randint(lo, hi)

    def choice(self, items):
        items = list(items)
        return items[self.integer(0, len(items) - 1)]

    def chance(self, percent: int) -> bool:
        return self.integer(1, 100) <= percent

    def weighted(self, weights: dict):
        """A key of `weights`, with probability proportional to its weight."""
        keys = [k for k, w in weights.items() if w > 0]
        roll = self.integer(1, sum(weights[k] for k in keys))
        for key in keys:
            roll -= weights[key]
            if roll <= 0:
                return key
        return keys[-1]

    def some(self, items, lo: int, hi: int) -> list:
        """Between lo and hi distinct items, in their original order."""
        items = list(items)
        count = self.integer(min(lo, len(items)), min(hi, len(items)))
        chosen = set()
        while len(chosen) < count:
            chosen.add(self.integer(0, len(items) - 1))
        return [items[i] for i in sorted(chosen)]


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


# ---- writing values in the language -----------------------------------------------------------

def literal(value: Any, annotation: Any = None) -> str:
    """A Python option value as .gen text (a Literal option is a bare name: `mask=A`)."""
    if typing.get_origin(annotation) is Literal or isinstance(value, Symbol):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        text = repr(value)
        return text
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class Symbol:
    name: str

    def __str__(self) -> str:
        return self.name


def type_text(t: TensorType) -> str:
    if t.kind == "cat":
        return f"cat[{t.classes}]"
    if t.kind == "step":
        return "step"
    return f"{t.kind}[{', '.join(map(str, t.shape))}]" if t.shape else t.kind


def real(*shape: int) -> TensorType:
    return TensorType(kind="real", shape=tuple(shape))


# ---- registry entries with drawn options ------------------------------------------------------

MISSING = object()

# Candidate values of options, by (entry, option) first, then by option name. Kept tiny.
POOLS: dict[Any, list] = {
    # optimizers
    "lr": [1e-3, 1e-2, 0.1, 2e-4], "betas": [(0.5, 0.999), (0.0, 0.9), (0.9, 0.99)],
    "eps": [1e-8, 1e-6], "weight_decay": [0.0, 1e-4, 0.1], "momentum": [0.0, 0.5, 0.9],
    "nesterov": [False, True], "alpha": [0.9, 0.99],
    # schedules
    "warmup": [0, 1, 3], "min_factor": [0.0, 0.1, 1.0], "every": [1, 2], "gamma": [0.1, 0.5],
    # initializers
    ("normal", "std"): [0.1, 1.0], ("normal", "mean"): [0.0, 1.0, -0.5],
    ("uniform", "low"): [-1.0, 0.0], ("uniform", "high"): [0.5, 1.0], "value": [-1.0, 0.0, 0.5, 1.0],
    # metrics
    ("iwae", "k"): [1, 2, 3], ("nll", "k"): [1, 2, 3], ("bpd", "k"): [1, 2, 3],
    ("coverage", "k"): [1.0, 3.0], ("coverage", "samples"): [10, 40],
    ("mmd", "samples"): [8, 30], ("swd", "samples"): [8, 30], "projections": [1, 4, 16],
    # Langevin
    ("Langevin", "steps"): [1, 2, 4], "step_size": [0.01, 1.0, 10.0], "noise": [0.0, 0.005, 0.05],
    "buffer": [4, 16, 100], "reinit": [0.0, 0.05, 1.0], ("Langevin", "low"): [-3.0, -1.0],
    ("Langevin", "high"): [1.0, 3.0],
    # diffusion
    ("Gaussian", "steps"): [2, 3, 8], "levels": [0, 2, 17], ("Gaussian", "betas"): [],
    "start": [1e-4, 1e-3], "end": [0.02, 0.05, 0.3], "s": [0.008, 0.1],
    # synthetic sources
    "n": [40, 64, 100], "modes": [1, 3, 8], "radius": [0.5, 2.0], ("ring", "std"): [0.02, 0.3],
    "side": [1, 2, 4], "spacing": [1.0, 2.0], ("grid", "std"): [0.05, 0.2], ("moons", "noise"): [0.0, 0.05],
    ("circles", "noise"): [0.0, 0.1], "factor": [0.2, 0.8], ("swiss_roll", "noise"): [0.0, 0.25],
}


def base_annotation(annotation: Any) -> Any:
    """The type under `Annotated[type, Range(...)]` (and under `Optional`)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return base_annotation(args[0])
    return annotation


def value_range(annotation: Any) -> Any:
    """The `Range` an option's annotation carries, or None."""
    if typing.get_origin(annotation) is typing.Annotated:
        return next((m for m in typing.get_args(annotation)[1:] if hasattr(m, "holds")), None)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return value_range(args[0]) if len(args) == 1 else None


def pool(entry: str, param: inspect.Parameter) -> list:
    """Candidate values of one option of an entry (from POOLS, else from its annotation, within
    its Range)."""
    found = POOLS.get((entry, param.name), POOLS.get(param.name))
    if found is not None:
        return found
    annotation, bounds = base_annotation(param.annotation), value_range(param.annotation)
    if bounds is not None and annotation in (int, float):
        return [v for v in ([1, 2, 3] if annotation is int else [0.1, 0.5, 1.0]) if bounds.holds(v)] or \
            [annotation(bounds.low + (1 if bounds.open_low else 0))]
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    if annotation is bool:
        return [True, False]
    if annotation is int:
        return [1, 2, 3]
    if annotation is float:
        return [0.1, 0.5, 1.0]
    if typing.get_origin(annotation) is list:
        return [[4], [4, 4], [3]]
    return []


EDGE_PERCENT = 2  # how often an option takes a value at the edge of (or outside) its domain


def edge_values(annotation: Any) -> list:
    """Values at the edges of an option's domain: the ends of its Range and just outside them,
    else zero and negative values. Each entry must refuse them with a diagnostic, or the run must
    take them (a torch error after check is a bug)."""
    base, bounds = base_annotation(annotation), value_range(annotation)
    if base in (int, float) and bounds is not None:
        step = 1 if base is int else 0.5
        ends = [bounds.low, bounds.low - step] if bounds.low is not None else []
        ends += [bounds.high, bounds.high + step] if bounds.high is not None else []
        return [base(v) for v in ends] + ([0, -1] if base is int else [0.0, -0.5])
    if typing.get_origin(base) is tuple:
        return [(0.0, 1.0), (-0.5, 0.9)]
    names = {getattr(a, "__name__", "") for a in (typing.get_args(base) or (base,))}
    if "int" in names:
        return [0, -1]
    if "float" in names:
        return [0.0, -0.5]
    if typing.get_origin(base) is list:
        return [[0], [-1]]
    return []


def option_value(pick: Picker, candidates: list, annotation: Any):
    """One of `candidates`, or now and then a value at the edge of the option's domain."""
    edges = edge_values(annotation)
    if edges and pick.chance(EDGE_PERCENT):
        return pick.choice(edges)
    return pick.choice(candidates)


@dataclass(frozen=True)
class Call:
    """An entry called with options: its text and what its rule returned."""

    text: str
    result: Any
    values: dict


def entry_call(pick: Picker, registry: Registry, name: str, leading: tuple = (), skip: int = 0,
               optional: int = 40, given: dict[str, str] | None = None, tries: int = 4,
               always: frozenset[str] = frozenset()) -> Call | None:
    """`name(options)` with options drawn from the entry's signature and accepted by its rule.
    `given` holds option texts the caller writes itself (energy networks, beta schedules): the
    first of them goes first and positionally, the others by keyword; their values are checked
    as None. Options named in `always` are drawn like required ones."""
    entry = registry[name]
    params = [p for p in parameters(entry.rule, skip) if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    given = given or {}
    for attempt in range(tries + 1):
        values = {}
        for p in params:
            if p.name in given:
                continue
            required = p.default is inspect.Parameter.empty or p.name in always
            if attempt < tries and (required or pick.chance(optional)):
                candidates = pool(name, p)
                if candidates:
                    values[p.name] = option_value(pick, candidates, p.annotation)
        required = {p.name for p in params if p.default is inspect.Parameter.empty}
        bound, problems = bind(name, entry.rule, [], {**values, **{k: None for k in given if k in required}}, skip)
        if problems:
            continue
        try:
            result = call_rule(entry.rule, list(leading), bound, skip)
        except EntryError:
            continue
        except Exception:  # the rule's own bug: keep the call, so that check meets it too
            result = None
        annotations = {p.name: p.annotation for p in params}
        parts = [text if i == 0 and params and params[0].name == key else f"{key}={text}"
                 for i, (key, text) in enumerate(given.items())]
        parts += [f"{k}={literal(v, annotations[k])}" for k, v in values.items()]
        text = f"{name}({', '.join(parts)})" if parts or pick.chance(50) else name
        return Call(text, result, values)
    return None


# ---- the spec under construction --------------------------------------------------------------

@dataclass(frozen=True)
class Value:
    """An expression and its per-sample type; `simple` when it needs no parentheses."""

    text: str
    type: TensorType
    simple: bool = True

    @property
    def atom(self) -> str:
        return self.text if self.simple else f"({self.text})"


@dataclass
class Objective:
    """A loss a train block minimizes, over what (None: everything it reaches)."""

    loss: str
    over: list[str] | None = None
    step: str | None = None


class Builder:
    """A spec being drawn: statements by section, fresh names, params, files and tags."""

    def __init__(self, pick: Picker):
        self.pick = pick
        self.known = known_enabled()
        self.blocks: list[str] = []
        self.params: list[str] = []
        self.data: list[str] = []
        self.decls: list[str] = []
        self.nets: list[str] = []
        self.losses: list[str] = []
        self.objectives: list[Objective] = []
        self.samples: list[str] = []
        self.caps: set[str] = {"losses"}
        self.files: list[DataFile] = []
        self.tags: set[str] = set()
        self.names: set[str] = set()
        self.width_params: dict[str, int] = {}
        self.float_params: dict[str, float] = {}
        self.data_problem = False
        self.train_text = ""
        self.evaluate_text = ""
        self.batch = 0
        self.owned: dict[str | None, list[str]] = {}   # network/density -> tensors and nets it created
        self.owners: list[str | None] = [None]

    @contextmanager
    def scope(self, owner: str):
        """Tensors and helper networks drawn inside belong to `owner` (for `over` lists)."""
        self.owners.append(owner)
        try:
            yield
        finally:
            self.owners.pop()

    def own(self, name: str) -> None:
        self.owned.setdefault(self.owners[-1], []).append(name)

    def expand(self, names: list[str]) -> list[str]:
        """`names` and everything with parameters they created (what a step over them must name)."""
        out, todo = [], list(names)
        while todo:
            name = todo.pop(0)
            if name not in out:
                out.append(name)
                todo += self.owned.get(name, [])
        return out

    def fresh(self, prefix: str) -> str:
        for i in range(1000):
            name = prefix if i == 0 and prefix not in ("h", "t") else f"{prefix}{i}"
            if name not in self.names:
                self.names.add(name)
                return name
        raise AssertionError("out of names")

    def tag(self, *tags: str) -> None:
        self.tags.update(tags)

    def width(self, value: int) -> str:
        """A hidden width as text: the number, or (sometimes) an int param holding it."""
        if not self.pick.chance(20):
            return str(value)
        name = self.fresh("w")
        self.params.append(f"param {name}: int = {value}")
        self.width_params[name] = value
        self.tag("construct:param_int")
        return name

    def number(self, value: float, prefix: str = "a") -> str:
        """A float constant as text: the number, or (sometimes) a float param holding it."""
        if not self.pick.chance(25):
            return literal(value)
        name = self.fresh(prefix)
        self.params.append(f"param {name}: float = {literal(value)}")
        self.float_params[name] = value
        self.tag("construct:param_float")
        return name

    def tensor(self, shape: tuple[int, ...], prefix: str = "t", init: str | None = None) -> str:
        """Declare a learned tensor of `shape` with a drawn initializer; returns its name."""
        name = self.fresh(prefix)
        if init is None:
            init_name = self.pick.choice(sorted(INITS))
            call = entry_call(self.pick, INITS, init_name, optional=60)
            init = call.text if call else "zeros"
            self.tag(f"init:{init_name}")
        self.decls.append(f"tensor {name}: {type_text(real(*shape))} = {init}")
        self.tag("construct:tensor")
        self.own(name)
        return name

    def text(self, model: str = "M", blocks: bool = True) -> str:
        """The spec; without `blocks`, the model alone (its blocks go in an imported file)."""
        sections = [self.params, self.data, self.decls, self.nets, self.losses]
        body = [line for section in sections for line in section]
        body.append(self.train_text)
        body += self.samples
        if self.evaluate_text:
            body.append(self.evaluate_text)
        inner = "\n".join("  " + line.replace("\n", "\n  ") for line in body)
        head = "".join(block + "\n\n" for block in self.blocks) if blocks else ""
        return f"{head}model {model} {{\n{inner}\n}}\n"


# ---- layers and pipelines ---------------------------------------------------------------------

# exp and sqrt overflow or take negatives in a random pipeline (a NaN loss, E406, tests nothing):
# they are drawn as functions on safe arguments instead (`exp(-h ^ 2)`, `sqrt(h ^ 2 + 1)`).
GENERAL_LAYERS = sorted(name for name, e in LAYERS.items()
                        if "invertible" not in e.tags and name not in ("MaskedLinear", "MaskedConv2d", "exp", "sqrt"))
INVERTIBLE_LAYERS = sorted(name for name, e in LAYERS.items() if "invertible" in e.tags)
# How often each layer is tried, by the rank of its input (others: 1); a layer that cannot take
# the input is skipped by its own rule, so these only shape the mix.
LAYER_WEIGHTS = {
    1: {"Linear": 8, "LayerNorm": 2, "BatchNorm": 2},
    2: {"Linear": 6, "SelfAttention": 4, "LayerNorm": 3},
    3: {"Conv2d": 8, "ConvTranspose2d": 3, "MaxPool2d": 3, "AvgPool2d": 3, "Upsample": 2, "GroupNorm": 4,
        "BatchNorm": 2, "SelfAttention": 2, "Linear": 2},
}
MAX_VALUES = 1024  # per-sample values of any intermediate tensor: keep every case tiny
WIDTHS = [1, 2, 3, 4, 6, 8]


@dataclass(frozen=True)
class Stage:
    text: str
    out: TensorType
    params: int


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layer_pool(name: str, param: inspect.Parameter, x: TensorType) -> list:
    """Candidate option values of a layer for input `x`."""
    channels = x.shape[0] if x.rank == 3 else x.shape[-1] if x.rank else 1
    table = {
        "out": WIDTHS, "dim": WIDTHS, "stride": [1, 2], "output_padding": [0, 1],
        "kernel": [1, 3, 5] if name == "MaskedConv2d" else [1, 2, 3, 5] if name.startswith("Conv") else [1, 2],
        "padding": [None, 0, 1, 2] if name == "Conv2d" else [0, 1],
        "groups": divisors(channels), "heads": divisors(channels)[:4], "scale": [1, 2],
        "p": [0.0, 0.1, 0.5], "slope": [0.01, 0.2], "bias": [True, False], "causal": [False, True],
        "hidden": [[4], [4, 4], [3], []], "bins": [2, 3, 5], "bound": [1.0, 3.0],
    }
    return table.get(param.name, pool(name, param))


def factorizations(n: int) -> list[tuple[int, ...]]:
    """Per-sample shapes with n values (up to rank 3)."""
    out = [(n,)]
    for a in divisors(n):
        if 1 < a < n:
            out.append((a, n // a))
            for b in divisors(n // a):
                if 1 < b < n // a:
                    out.append((a, b, n // a // b))
    out.append((1, n))
    return out


def layer_stage(pick: Picker, b: Builder, name: str, x: TensorType, optional: int = 35) -> Stage | None:
    """`name(options)` applied to `x`, with options drawn for this input (all of them on a second
    try, when a default does not fit: GroupNorm's 8 groups); None if it cannot take x."""
    return draw_layer(pick, b, name, x, optional) or draw_layer(pick, b, name, x, 100)


def draw_layer(pick: Picker, b: Builder, name: str, x: TensorType, optional: int) -> Stage | None:
    entry = LAYERS[name]
    if name == "reshape":
        dims = pick.choice(factorizations(x.numel))
        values, text = {"dims": list(dims)}, f"reshape({', '.join(map(str, dims))})"
    else:
        values, parts = {}, []
        for p in parameters(entry.rule, 1):
            required = p.default is inspect.Parameter.empty
            if required or pick.chance(optional):
                candidates = layer_pool(name, p, x)
                if candidates:
                    values[p.name] = option_value(pick, candidates, p.annotation)
        for i, (key, value) in enumerate(values.items()):
            annotation = next(p.annotation for p in parameters(entry.rule, 1) if p.name == key)
            shown = b.width(value) if key in ("out", "dim") else literal(value, annotation)
            parts.append(shown if i == 0 and pick.chance(50) and key == next(iter(values)) and
                         key == parameters(entry.rule, 1)[0].name else f"{key}={shown}")
        text = f"{name}({', '.join(parts)})" if parts or pick.chance(40) else name
    try:
        bound, problems = bind(name, entry.rule, values.pop("dims", []), values, 1)
        if problems:
            return None
        built = call_rule(entry.rule, [x], bound, 1)
    except EntryError:
        return None
    except Exception:  # the rule's own bug: keep the stage (type unknown), so that check meets it too
        b.tag("edge:rule_crash")
        return Stage(text, x, 0)
    if built.out.numel > MAX_VALUES or any(d > 64 for d in built.out.shape):
        return None
    b.tag(f"layer:{name}")
    return Stage(text, built.out, built.params)


def draw_stage(pick: Picker, b: Builder, x: TensorType, names: list[str] | None = None) -> Stage | None:
    """A random layer that accepts `x` (up to a few tries)."""
    names = names or GENERAL_LAYERS
    favoured = LAYER_WEIGHTS.get(x.rank, {})
    weights = {n: favoured.get(n, 1) for n in names}
    for _ in range(6):
        stage = layer_stage(pick, b, pick.weighted(weights), x)
        if stage is not None:
            return stage
    return None


def pipe(v: Value, stages: list[Stage]) -> Value:
    if not stages:
        return v
    return Value(f"{v.atom} |> " + " |> ".join(s.text for s in stages), stages[-1].out, simple=False)


def draw_pipeline(pick: Picker, b: Builder, v: Value, lo: int = 1, hi: int = 3) -> Value:
    stages, x = [], v.type
    for _ in range(pick.integer(lo, hi)):
        stage = draw_stage(pick, b, x)
        if stage is None:
            break
        stages.append(stage)
        x = stage.out
    return pipe(v, stages)


def fixed(name: str, text: str, x: TensorType, b: Builder | None = None, **options) -> Stage:
    """A layer with given options (the type still comes from the entry's rule)."""
    entry = LAYERS[name]
    dims = options.pop("dims", [])
    bound, problems = bind(name, entry.rule, dims, options, 1)
    assert not problems, (name, options, problems)
    built = call_rule(entry.rule, [x], bound, 1)
    if b is not None:
        b.tag(f"layer:{name}")
    return Stage(text, built.out, built.params)


def linear(b: Builder, x: TensorType, out: int, hidden: bool = False) -> Stage:
    text = f"Linear({b.width(out) if hidden else out})"
    return fixed("Linear", text, x, b, out=out)


def conv(pick: Picker, b: Builder, x: TensorType, out: int) -> Stage:
    """A same-size convolution to `out` channels (kernel 1 or 3)."""
    kernel = pick.choice([1, 3])
    text = f"Conv2d({out})" if kernel == 3 else f"Conv2d({out}, kernel=1)"
    return fixed("Conv2d", text, x, b, out=out, kernel=kernel)


def activation(pick: Picker, b: Builder, x: TensorType) -> Stage:
    name = pick.choice(sorted(ACTIVATIONS) + ["leaky_relu"])
    if name in ("exp", "sqrt"):  # unbounded or undefined on negatives: keep training finite
        name = "tanh"
    text = f"leaky_relu({pick.choice([0.01, 0.2])})" if name == "leaky_relu" else name
    return fixed(name, text, x, b, **({"slope": 0.2} if name == "leaky_relu" else {}))


def flatten(b: Builder, x: TensorType) -> list[Stage]:
    return [] if x.rank == 1 else [fixed("flatten", "flatten", x, b)]


def adapt(pick: Picker, b: Builder, v: Value, target: TensorType) -> Value:
    """`v` through layers to a real tensor of `target`'s shape, ending with a parametric layer."""
    x = v.type
    if x.rank == 3 and target.rank == 3 and x.shape[1:] == target.shape[1:]:
        return pipe(v, [conv(pick, b, x, target.shape[0])])
    if x.rank >= 1 and target.rank == x.rank and x.shape[:-1] == target.shape[:-1]:
        return pipe(v, [linear(b, x, target.shape[-1])])
    stages = flatten(b, x)
    width = target.numel if target.rank else 1
    stages.append(linear(b, stages[-1].out if stages else x, width))
    if target.rank >= 2:
        dims = list(target.shape)
        stages.append(fixed("reshape", f"reshape({', '.join(map(str, dims))})", stages[-1].out, b, dims=dims))
    return pipe(v, stages)


def shape_keeping(pick: Picker, b: Builder, x: TensorType) -> list[Stage]:
    """A short parametric pipeline whose output has the shape of `x` (residuals, repeats)."""
    if x.rank == 3:
        first = conv(pick, b, x, pick.choice([2, 4]))
        act = activation(pick, b, first.out)
        return [first, act, conv(pick, b, act.out, x.shape[0])]
    first = linear(b, x, pick.choice(WIDTHS), hidden=True)
    act = activation(pick, b, first.out)
    return [first, act, linear(b, act.out, x.shape[-1])]


# ---- expressions in network bodies ------------------------------------------------------------

def vectorize(pick: Picker, b: Builder, v: Value) -> Value:
    """Any network input as a real vector: labels by onehot or Embedding, steps by sinusoidal."""
    t = v.type
    if t.kind == "cat":
        if pick.chance(50):
            b.tag("fn:onehot")
            return Value(f"onehot({v.text})", real(t.classes))
        dim = pick.choice([2, 4])
        return pipe(v, [fixed("Embedding", f"Embedding({dim})", t, b, dim=dim)])
    if t.kind == "step":
        dim = pick.choice([2, 4, 8])
        b.tag("fn:sinusoidal")
        return Value(f"sinusoidal({v.text}, {dim})", real(dim))
    return pipe(v, flatten(b, t))


def merge(pick: Picker, b: Builder, inputs: list[Value]) -> Value:
    """One value from a network's inputs."""
    if len(inputs) == 1:
        v = inputs[0]
        return vectorize(pick, b, v) if v.type.kind in ("cat", "step") else v
    images = [v for v in inputs if v.type.rank == 3]
    if len(images) == len(inputs) and len({v.type.shape[1:] for v in images}) == 1 and pick.chance(70):
        b.tag("fn:concat", "construct:concat_channels")
        channels = sum(v.type.shape[0] for v in images)
        return Value(f"concat({', '.join(v.text for v in inputs)}, dim=0)",
                     real(channels, *images[0].type.shape[1:]))
    vectors = [vectorize(pick, b, v) for v in inputs]
    if pick.chance(60):
        b.tag("fn:concat")
        return Value(f"concat({', '.join(v.text for v in vectors)})", real(sum(v.type.numel for v in vectors)))
    width = pick.choice(WIDTHS)
    b.tag("construct:sum_of_projections")
    return Value(" + ".join(pipe(v, [linear(b, v.type, width)]).atom for v in vectors), real(width), simple=False)


def transform(pick: Picker, b: Builder, v: Value, env: dict[str, TensorType]) -> Value:
    """A random well-typed expression built on `v` (the same or another per-sample type)."""
    t = v.type
    realish = t.kind in ("real", "bin") and t.rank >= 1
    kinds = {"pipeline": 12 if t.rank == 3 else 6, "residual": 3 if realish else 0, "gate": 2 if realish else 0,
             "arithmetic": 3 if realish else 0, "function": 3 if realish else 0,
             "concat": 2 if realish else 0, "tensor": 2 if realish and t.numel <= 64 else 0,
             "label_index": 2 if realish and any(e.kind == "cat" for e in env.values()) else 0,
             "tensor_row": 1 if realish and t.numel <= 64 else 0,
             "helper_net": 1 if realish else 0,
             "attention": 2 if t.rank == 2 and t.kind != "cat" else 0,
             "repeat": 2 if realish else 0, "block": 1 if realish else 0,
             "reshape": 1 if realish and "reshape" in FUNCTIONS else 0,
             "reduce_axis": 2 if realish and t.rank >= 2 and reduces_axes() else 0,
             "known": 2 if b.known and realish else 0}
    kind = pick.weighted(kinds)
    b.tag(f"expr:{kind}")
    return EXPRESSIONS[kind](pick, b, v, env)


def expr_pipeline(pick, b, v, env):
    return draw_pipeline(pick, b, v)


def expr_residual(pick, b, v, env):
    return Value(f"{v.atom} + ({pipe(v, shape_keeping(pick, b, v.type)).text})", v.type.as_real(), simple=False)


def expr_gate(pick, b, v, env):
    t = v.type
    inner = pipe(v, [conv(pick, b, t, t.shape[0]) if t.rank == 3 else linear(b, t, t.shape[-1])])
    if pick.chance(50):
        b.tag("fn:sigmoid")
        return Value(f"{v.atom} * sigmoid({inner.text})", v.type.as_real(), simple=False)
    return Value(f"{v.atom} * ({inner.text} |> sigmoid)", v.type.as_real(), simple=False)


def expr_arithmetic(pick, b, v, env):
    a = v.atom
    form = pick.choice([f"2 * {a}", f"{a} / 2", f"{a} - 0.5", f"0.5 + {a}", f"{a} ^ 2", f"-{a}",
                        f"log ({a} ^ 2 + 1)", f"{a} * {a}", f"{a} - {b.number(0.1)} * {a}", f"1 / (1 + {a} ^ 2)"])
    b.tag("construct:arithmetic")
    return Value(form, v.type.as_real(), simple=False)


# Functions drawn by constructs of their own (joins, labels, steps, shapes, reductions, losses,
# penalties, attention); any other entry of FUNCTIONS is tried as a map of one tensor by
# `expr_function` (an entry whose rule refuses that is skipped, so a new one is drawn at once).
SPECIAL_FUNCTIONS = {"concat", "onehot", "sinusoidal", "reshape", "mean", "sum", "bce", "mse", "l1",
                     "gradient_penalty", "r1_penalty", "attend", "hard_attend"}
# exp and sqrt on safe arguments (a NaN loss, E406, tests nothing)
SAFE_FORMS = {"exp": "exp(-{0} ^ 2)", "sqrt": "sqrt({0} ^ 2 + 1)"}
FUNCTION_POOLS = {"slope": [0.01, 0.2], "min": [-2.0, -1.0], "max": [1.0, 2.0], "std": [0.1, 0.3], "p": [0.1, 0.3]}


def function_call(pick: Picker, b: Builder, name: str, v: Value) -> Value | None:
    """`name(v, options)` with options drawn from the entry's signature, or None if it refuses."""
    if name in SAFE_FORMS:
        return Value(SAFE_FORMS[name].format(v.atom), v.type.as_real())
    entry = FUNCTIONS[name]
    params = parameters(entry.rule, 1)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return None
    options = {p.name: pick.choice(FUNCTION_POOLS.get(p.name) or pool(name, p) or [None])
               for p in params if p.default is inspect.Parameter.empty or pick.chance(50)}
    bound, problems = bind(name, entry.rule, [], options, 1)
    if problems:
        return None
    try:
        out = call_rule(entry.rule, [v.type], bound, 1).out
    except Exception:  # EntryError: refused; anything else is a rule's own bug, not drawn here
        return None
    if not isinstance(out, TensorType) or out.shape != v.type.shape:
        return None
    texts = [literal(value) if key == "slope" and pick.chance(50) else f"{key}={literal(value)}"
             for key, value in options.items()]
    return Value(f"{name}({', '.join([v.text, *texts])})", out.as_real())


def expr_function(pick, b, v, env):
    """An elementwise function of the registry applied to `v`."""
    names = sorted(n for n in FUNCTIONS if n not in SPECIAL_FUNCTIONS)
    for _ in range(4):
        name = pick.choice(names)
        value = function_call(pick, b, name, v)
        if value is not None:
            b.tag(f"fn:{name}")
            return value
    return Value(f"tanh({v.text})", v.type.as_real())


def expr_reshape(pick, b, v, env):
    """The `reshape` function: a new per-sample shape with as many values."""
    dims = pick.choice(factorizations(v.type.numel))
    b.tag("fn:reshape")
    return Value(f"reshape({v.text}, {', '.join(map(str, dims))})", real(*dims))


def expr_reduce_axis(pick, b, v, env):
    """`mean` or `sum` over per-sample dimensions (`dim=`): the value loses those axes."""
    t = v.type
    axes = pick.some(range(t.rank), 1, max(1, t.rank - 1))
    written = [a - t.rank if pick.chance(50) else a for a in axes]
    dim = str(written[0]) if len(written) == 1 and pick.chance(60) else literal(written)
    fn = pick.choice(["mean", "sum"])
    b.tag(f"fn:{fn}", "construct:reduce_axis")
    return Value(f"{fn}({v.text}, dim={dim})", real(*(size for axis, size in enumerate(t.shape) if axis not in axes)))


def expr_concat(pick, b, v, env):
    t = v.type
    if t.rank == 3:
        other = pipe(v, [conv(pick, b, t, pick.choice([1, 2]))])
        b.tag("fn:concat", "construct:concat_channels")
        return Value(f"concat({v.text}, {other.text}, dim=0)", real(t.shape[0] + other.type.shape[0], *t.shape[1:]))
    other = pipe(v, [linear(b, t, pick.choice(WIDTHS))])
    b.tag("fn:concat")
    dim = pick.choice(["", ", dim=-1", f", dim={t.rank - 1}"])
    return Value(f"concat({v.text}, {other.text}{dim})", real(*t.shape[:-1], t.shape[-1] + other.type.shape[-1]))


def expr_tensor(pick, b, v, env):
    """Arithmetic with a learned tensor shared by the batch (same shape, or size-1 dims)."""
    shape = v.type.shape
    if pick.chance(30):
        shape = tuple(1 if pick.chance(50) else d for d in shape)
        b.tag("construct:tensor_broadcast")
    name = b.tensor(shape)
    op = pick.choice(["+", "*", "-"])
    text = f"{v.atom} {op} {name}" if op != "*" else f"{v.atom} * exp({name})"
    return Value(text, v.type.as_real(), simple=False)


def expr_label_index(pick, b, v, env):
    """A row of a learned table picked by a label input: `mu[y]`."""
    label = pick.choice([n for n, e in env.items() if e.kind == "cat"])
    classes = env[label].classes
    name = b.tensor((classes, *v.type.shape), prefix="emb")
    b.tag("construct:index_label")
    return Value(f"{v.atom} + {name}[{label}]", v.type.as_real(), simple=False)


def expr_tensor_row(pick, b, v, env):
    """A fixed row of a learned table: `table[1]` (a shared tensor indexed by an int)."""
    rows = pick.choice([2, 3])
    name = b.tensor((rows, *v.type.shape), prefix="tab")
    b.tag("construct:index_int_tensor")
    return Value(f"{v.atom} + {name}[{pick.integer(0, rows - 1)}]", v.type.as_real(), simple=False)


def expr_helper_net(pick, b, v, env):
    """A call of a helper `net` declared for this input type."""
    name = b.fresh("aux")
    out = pick.choice([v.type.as_real(), real(pick.choice(WIDTHS))])
    with b.scope(name):
        body = network_body(pick, b, [("u", v.type)], out, depth=1)
    b.nets.append(net_text("net", name, [f"u: {type_text(v.type)}"], out, body))
    b.own(name)
    b.tag("construct:net_call")
    return Value(f"{name}({v.text})", out)


def expr_attention(pick, b, v, env):
    """Soft or hard attention over the positions of a sequence value real[T, C]."""
    t = v.type
    fn = pick.choice(["attend", "hard_attend"])
    keys = pipe(v, [linear(b, t, t.shape[1])])
    values = pipe(v, [linear(b, t, pick.choice(WIDTHS))])
    query = v if pick.chance(50) else pipe(v, [linear(b, t, t.shape[1])])
    b.tag(f"fn:{fn}")
    return Value(f"{fn}({query.text}, {keys.text}, {values.text})", real(t.shape[0], values.type.shape[1]))


def expr_repeat(pick, b, v, env):
    stages = shape_keeping(pick, b, v.type.as_real())
    n = pick.choice([0, 1, 2])
    b.tag("construct:repeat")
    head = [] if v.type.kind == "real" else [fixed("identity", "identity", v.type, b)]
    inner = " |> ".join(s.text for s in stages)
    text = pipe(v, head).atom if head else v.atom
    return Value(f"{text} |> repeat {n} {{ {inner} }}", v.type.as_real(), simple=False)


def expr_block(pick, b, v, env):
    """A pipeline block defined at the top of the file, used as a stage."""
    t = v.type
    name = b.fresh("Block")
    act = pick.choice(["relu", "tanh", "silu"])
    if t.rank == 3:
        b.blocks.append(f"block {name}(ch: int, depth: int = 1) {{\n  repeat depth {{ Conv2d(ch) |> {act} }}\n}}")
        ch = pick.choice([1, 2, 4])
        out = real(ch, *t.shape[1:])
        use = f"{name}({ch})" if pick.chance(50) else f"{name}(ch={ch}, depth=2)"
    else:
        b.blocks.append(f"block {name}(width: int, depth: int = 1) {{\n  repeat depth {{ Linear(width) |> {act} }}\n}}")
        width = pick.choice(WIDTHS)
        out = real(*t.shape[:-1], width)
        use = f"{name}({width})" if pick.chance(50) else f"{name}(width={width}, depth=2)"
    b.tag("construct:block")
    return Value(f"{v.atom} |> {use}", out, simple=False)


def expr_known(pick, b, v, env):
    """Constructs of the bugs issue 10 started from (see KNOWN_BUGS)."""
    t = v.type
    kind = pick.choice(["index", "reduce", "scalar_times", "shared_attend"])
    if kind == "shared_attend" and t.rank == 2:
        b.tag("known:shared_attend")
        keys, values = b.tensor((3, t.shape[1]), "keys"), b.tensor((3, t.shape[1]), "values")
        return Value(f"{pick.choice(['attend', 'hard_attend'])}({v.text}, {keys}, {values})", t.as_real())
    labels = [(n, e.classes) for n, e in env.items() if e.kind == "cat" and t.numel % e.classes == 0]
    if kind == "index" and labels and pick.chance(50):  # a per-sample row picked by a label
        label, k = pick.choice(labels)
        b.tag("known:index_batch", "construct:index_label_value")
        return Value(f"reshape({v.text}, {k}, {t.numel // k})[{label}]", real(t.numel // k))
    if kind == "index" and t.rank >= 2:
        b.tag("known:index_batch")
        return Value(f"{v.atom}[{pick.integer(0, t.shape[0] - 1)}]", real(*t.shape[1:]))
    if kind == "reduce":
        b.tag("known:reduce_in_net")
        return Value(f"{v.atom} - mean({v.text})", t.as_real(), simple=False)
    b.tag("known:scalar_times_vector")
    scalar = pipe(v, flatten(b, t) + [linear(b, real(t.numel), 1)])
    return Value(f"({scalar.text} |> reshape(1)) * {v.atom}", t.as_real(), simple=False)


def reduces_axes() -> bool:
    """Do `mean`/`sum` take per-sample axes (`dim=`)?"""
    return any(p.name == "dim" for p in parameters(FUNCTIONS["mean"].rule, 0))


EXPRESSIONS = {"reshape": expr_reshape, "reduce_axis": expr_reduce_axis, "pipeline": expr_pipeline,
               "residual": expr_residual, "gate": expr_gate,
               "arithmetic": expr_arithmetic, "function": expr_function, "concat": expr_concat,
               "tensor": expr_tensor, "label_index": expr_label_index, "tensor_row": expr_tensor_row,
               "helper_net": expr_helper_net, "attention": expr_attention, "repeat": expr_repeat,
               "block": expr_block, "known": expr_known}


def network_body(pick: Picker, b: Builder, inputs: list[tuple[str, TensorType]], target: TensorType,
                 final: str | None = None, depth: int = 2) -> list[str]:
    """Locals and a result that maps the inputs to `target`."""
    env = dict(inputs)
    current = merge(pick, b, [Value(n, t) for n, t in inputs])
    lines = []
    for _ in range(pick.integer(0, depth)):
        value = transform(pick, b, current, env)
        name = b.fresh("h")
        lines.append(f"{name} = {value.text}")
        current = Value(name, value.type)
    if pick.chance(50) and current.type.kind != "cat":
        current = draw_pipeline(pick, b, current, 0, 2)
    result = adapt(pick, b, current, target)
    if final:
        result = Value(f"{result.text} |> {final}", result.type, simple=False)
    lines.append(result.text)
    return lines


def local_lines(pick: Picker, b: Builder, inputs: list[tuple[str, TensorType]], depth: int = 2
                ) -> tuple[list[str], Value]:
    """The locals of a density block: lines and the value its draws read."""
    env = dict(inputs)
    current = merge(pick, b, [Value(n, t) for n, t in inputs])
    lines = []
    for _ in range(pick.integer(0, depth)):
        value = transform(pick, b, current, env)
        name = b.fresh("h")
        lines.append(f"{name} = {value.text}")
        current = Value(name, value.type)
    if not current.simple:
        name = b.fresh("h")
        lines.append(f"{name} = {current.text}")
        current = Value(name, current.type)
    return lines, current


def net_text(role: str, name: str, inputs: list[str], out: TensorType | str | None, body: list[str]) -> str:
    arrow = "" if out is None else f" -> {out if isinstance(out, str) else type_text(out)}"
    inner = "\n".join("  " + line for line in body)
    return f"{role} {name}({', '.join(inputs)}){arrow} {{\n{inner}\n}}"


# ---- distributions ----------------------------------------------------------------------------

def positive(pick: Picker, b: Builder, source: Value, target: TensorType) -> str:
    """A positive scale: a constant, or a head of `source` made positive."""
    if pick.chance(30):
        return b.number(pick.choice([0.1, 0.5, 1.0]), "sd")
    head = adapt(pick, b, source, target)
    squash = pick.choice(["softplus", "exp"])
    b.tag(f"scale:{squash}")
    return f"{head.text} |> {squash}" if squash == "softplus" or pick.chance(50) else f"exp({head.text})"


def event_kind(name: str) -> str:
    """The kind of value a distribution of the registry draws, asked from its rule: with every
    parameter a real vector, else with the first one only (`logits` of Bernoulli/Categorical)."""
    entry = DISTRIBUTIONS[name]
    params = parameters(entry.rule, entry.skip)
    for given in (params, params[:1]):
        try:
            return entry.rule(**{p.name: real(3) for p in given}).event.kind
        except (EntryError, TypeError):
            continue
    raise AssertionError(f"cannot call the rule of {name}")


def families(kind: str) -> list[str]:
    """The registry's distributions over values of `kind` (real, bin or cat)."""
    return sorted(name for name in DISTRIBUTIONS if event_kind(name) == kind)


def real_family(pick: Picker, b: Builder, source: Value, var: TensorType, weights: dict[str, int],
                margin: str = "1") -> str:
    """A draw from a real-valued family of the registry: its first parameter a head of `source`,
    its second positive (a scale), or above the first (`high` of a range)."""
    family = pick.weighted({name: weights.get(name, 1) for name in families("real")})
    first, second = [p.name for p in parameters(DISTRIBUTIONS[family].rule, DISTRIBUTIONS[family].skip)][:2]
    loc = adapt(pick, b, source, var.as_real())
    b.tag(f"dist:{family}")
    if second == "high":
        width = adapt(pick, b, source, var).text
        return f"{family}({first} = {loc.text}, {second} = {loc.atom} + softplus({width}) + {margin})"
    scale = positive(pick, b, source, var.as_real())
    if pick.chance(50):
        return f"{family}({first} = {loc.text}, {second} = {scale})"
    return f"{family}({loc.text}, {scale})"


def draw_distribution(pick: Picker, b: Builder, var: TensorType, source: Value, unit: bool) -> str:
    """`Family(args)` for a draw of a value of type `var`, its parameters read from `source`."""
    if var.kind in ("cat", "bin"):
        family = pick.choice(families(var.kind))
        size = real(var.classes) if var.kind == "cat" else var.as_real()
        logits = adapt(pick, b, source, size)
        b.tag(f"dist:{family}")
        squash = "softmax" if var.kind == "cat" else "sigmoid"
        return f"{family}(logits = {logits.text})" if pick.chance(70) else f"{family}(probs = {squash}({logits.text}))"
    return real_family(pick, b, source, var, {"Normal": 6, "Laplace": 2, "Uniform": 1})


def prior(pick: Picker, b: Builder, var: TensorType, uniform: int = 2) -> str:
    """The prior of a latent of type `var`. An encoder's Normal or Laplace posterior has an
    infinite KL to a Uniform prior (a NaN loss at the first round), so models with encoders draw
    Uniform priors rarely (`uniform` is its weight out of 12)."""
    if var.kind == "cat":
        logits = b.tensor((var.classes,), prefix="pi")
        b.tag("dist:Categorical", "prior:categorical")
        if b.known and pick.chance(30):
            b.tag("known:scalar_categorical")
            return "Categorical(logits = 0)"
        return f"Categorical(logits = {logits})" if pick.chance(70) else f"Categorical(probs = softmax({logits}))"
    if var.kind == "bin":
        b.tag("dist:Bernoulli", "prior:bernoulli")
        form = pick.choice(["zero", "half", "tensor"])
        if form == "tensor":
            return f"Bernoulli(logits = {b.tensor(var.shape, prefix='pl')})"
        return "Bernoulli(logits = 0)" if form == "zero" else "Bernoulli(probs = 0.5)"
    family = pick.weighted({"Normal": 6, "Laplace": 2, "Uniform": uniform, "learned": 2})
    b.tag(f"prior:{family}")
    if family == "learned":
        mu, log_s = b.tensor(var.shape, "mu"), b.tensor(var.shape, "ls")
        b.tag("dist:Normal")
        return f"Normal({mu}, exp({log_s}))"
    b.tag(f"dist:{family}")
    if family == "Uniform":
        return "Uniform(-1, 1)" if pick.chance(70) else "Uniform(low = 0, high = 1)"
    return f"{family}(0, 1)" if pick.chance(60) else f"{family}(loc = 0, scale = {b.number(1.0, 's')})"


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


# ---- model families ---------------------------------------------------------------------------

def input_decl(var: DataVar | tuple[str, TensorType], pick: Picker) -> str:
    """A network input naming a variable: untyped (takes the variable's type) or typed."""
    name, t = (var.name, var.type) if isinstance(var, DataVar) else var
    return name if pick.chance(60) else f"{name}: {type_text(t)}"


def family_autoencoder(pick: Picker, b: Builder, plan: DataPlan) -> None:
    x = plan.main()
    labels = plan.labels(x)[:1] if pick.chance(60) else []
    code = real(pick.choice([1, 2, 4]))
    enc, dec, h = b.fresh("enc"), b.fresh("dec"), b.fresh("code")
    target = x.type.as_real()
    final = "sigmoid" if x.unit and pick.chance(50) else None
    corrupt = pick.choice([x.name, f"add_noise({x.name}, std={b.number(0.3, 'noise')})", f"drop({x.name}, p=0.3)"])
    # a corrupted input is real even where the data are bin
    x_in = (x.name, x.type if corrupt == x.name else x.type.as_real())
    with b.scope(enc):
        body = network_body(pick, b, [x_in] + [(y.name, y.type) for y in labels], code)
    inputs = [input_decl(x, pick) if corrupt == x.name else f"{x.name}: {type_text(x_in[1])}"]
    b.nets.append(net_text("net", enc, inputs + [input_decl(y, pick) for y in labels], code, body))
    with b.scope(dec):
        body = network_body(pick, b, [(h, code)] + [(y.name, y.type) for y in labels], target, final)
    b.nets.append(net_text("net", dec, [f"{h}: {type_text(code)}"] + [input_decl(y, pick) for y in labels],
                           target, body))
    given = "".join(f", {y.name}" for y in labels)
    recon = f"{dec}({enc}({corrupt}{given}){given})"
    measure = pick.choice(["mse", "l1"] + (["bce"] if x.unit and final is None else []))
    b.tag(f"fn:{measure}")
    terms = [f"{measure}({recon}, {x.name})"]
    if pick.chance(30):
        reduce = pick.choice(["mean", "sum"])
        terms.append(f"{b.number(0.01, 'lam')} * {reduce}(abs({enc}({x.name}{given})))")
        b.tag(f"fn:{reduce}", "fn:abs")
    loss = b.fresh("recon")
    if len(terms) > 1 and pick.chance(50):  # a loss that names other losses
        sparsity, total = b.fresh("sparsity"), b.fresh("total")
        b.losses += [f"loss {loss} = {terms[0]}", f"loss {sparsity} = {terms[1]}",
                     f"loss {total} = {loss} + {sparsity}"]
        loss = total
        b.tag("construct:loss_of_losses")
    else:
        b.losses.append(f"loss {loss} = {' + '.join(terms)}")
    b.objectives.append(Objective(loss, over=[enc, dec] if pick.chance(40) else None))
    b.samples.append(f"sample {x.name} = {dec}({enc}({x.name}{given}){given})")
    b.caps |= {"reconstruction", "samples"}
    b.tag("family:autoencoder")


def encoder_block(pick: Picker, b: Builder, name: str, z: str, zt: TensorType, given: list[DataVar]) -> None:
    with b.scope(name):
        lines, h = local_lines(pick, b, [(v.name, v.type) for v in given])
        lines.append(f"{z} ~ {encoder_distribution(pick, b, zt, h)}")
    head = f"encoder {name}({z} | {', '.join(v.name for v in given)})"
    b.nets.append(head + " {\n" + "\n".join("  " + line for line in lines) + "\n}")


def encoder_distribution(pick: Picker, b: Builder, zt: TensorType, h: Value) -> str:
    if zt.kind != "real":
        return draw_distribution(pick, b, zt, h, unit=False)
    text = real_family(pick, b, h, zt, {"Normal": 8, "Laplace": 1, "Uniform": 1}, margin="0.01")
    b.tag(f"posterior:{text.split('(')[0]}")
    return text


def latent_type(pick: Picker) -> TensorType:
    kind = pick.weighted({"real": 10, "bin": 1, "cat": 1})
    if kind == "cat":
        return TensorType(kind="cat", classes=pick.choice([2, 3]))
    return TensorType(kind=kind, shape=pick.choice([(1,), (2,), (4,), (2, 2)]))


def family_vae(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """A VAE: one or two latents, each with its prior and encoder, a decoder of the data given
    them (and perhaps the label), the ELBO with a weighted KL."""
    x = plan.main()
    labels = plan.labels(x)[:1] if pick.chance(50) else []
    latents = []
    for encoder in ["q", "r"][:2 if pick.chance(15) else 1]:
        z = b.fresh("z")
        zt = latent_type(pick)
        with b.scope("p"):
            b.decls.append(f"latent {z}: {type_text(zt)} ~ {prior(pick, b, zt, uniform=pick.choice([0, 0, 0, 1]))}")
        encoder_block(pick, b, encoder, z, zt, [x, *labels])
        latents.append((z, zt, encoder))
    with b.scope("p"):
        lines, h = local_lines(pick, b, [(z, zt) for z, zt, _ in latents] + [(y.name, y.type) for y in labels])
        lines.append(f"{x.name} ~ {draw_distribution(pick, b, x.type, h, x.unit)}")
    cond = ", ".join([z for z, _, _ in latents] + [y.name for y in labels])
    b.nets.append(f"decoder p({x.name} | {cond}) {{\n" + "\n".join("  " + line for line in lines) + "\n}")
    qgiven = ", ".join(shuffled(pick, b, [x.name] + [y.name for y in labels]))
    beta = b.number(pick.choice([1.0, 0.5, 4.0]), "beta")
    kls = " + ".join(f"kl({q}({z} | {qgiven}), p({z}))" for z, _, q in latents)
    kls = kls if len(latents) == 1 else f"({kls})"
    likelihood = f"-log p({x.name} | {', '.join(shuffled(pick, b, cond.split(', ')))})"
    if pick.chance(20):  # per-batch numbers instead of per-sample ones: the same objective
        likelihood, kls = f"mean({likelihood})", f"sum({kls}) / {batch_placeholder(b)}"
        b.tag("construct:reduced_terms", "fn:mean", "fn:sum")
    loss = b.fresh("elbo")
    b.losses.append(f"loss {loss} = {likelihood} + {beta} * {kls}")
    b.objectives.append(Objective(loss, over=["p"] + [q for _, _, q in latents] if pick.chance(30) else None))
    b.samples.append(f"sample {x.name} ~ p({x.name} | {cond})")
    if pick.chance(20):
        b.samples.append(f"sample {latents[0][0]} ~ p({latents[0][0]})")
        b.tag("construct:sample_latent")
    b.caps |= {"encoder", "likelihood", "samples"}
    b.tag("family:vae", "fn:kl", "construct:encoder", "construct:decoder",
          *(f"latent:{zt.kind}" for _, zt, _ in latents), *(["construct:two_latents"] if len(latents) > 1 else []))


def shuffled(pick: Picker, b: Builder, names: list[str]) -> list[str]:
    """Given variables of a density term in another order (the term means the same)."""
    if len(names) > 1 and pick.chance(30):
        b.tag("construct:given_order")
        return names[1:] + names[:1]
    return names


def batch_placeholder(b: Builder) -> str:
    """The batch size as the train block will set it (filled in by render_train)."""
    return BATCH


def family_observe_latent(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """`observe x ~ D(dec(z), ...)` with an encoder for z: a VAE written with observe."""
    x = plan.main()
    z, dec = b.fresh("z"), b.fresh("dec")
    zt = real(pick.choice([1, 2, 4]))
    b.decls.append(f"latent {z}: {type_text(zt)} ~ {prior(pick, b, zt, uniform=pick.choice([0, 0, 0, 1]))}")
    out = x.type.as_real()
    with b.scope(dec):
        body = network_body(pick, b, [(z, zt)], out)
    b.nets.append(net_text("net", dec, [input_decl((z, zt), pick)], out, body))
    encoder_block(pick, b, "q", z, zt, [x])
    if x.type.kind == "bin":
        b.decls.append(f"observe {x.name} ~ Bernoulli(logits = {dec}({z}))")
        b.tag("dist:Bernoulli")
    else:
        family = pick.choice(["Normal", "Laplace"])
        b.decls.append(f"observe {x.name} ~ {family}({dec}({z}), {b.number(0.5, 'sd')})")
        b.tag(f"dist:{family}")
    loss = b.fresh("elbo")
    b.losses.append(f"loss {loss} = -log p({x.name} | {z}) + kl(q({z} | {x.name}), p({z}))")
    b.objectives.append(Objective(loss))
    b.samples.append(pick.choice([f"sample {x.name} ~ p({x.name} | {z})", f"sample {x.name} = {dec}({z})"]))
    b.caps |= {"encoder", "likelihood", "samples"}
    b.tag("family:observe_latent", "construct:observe", "fn:kl")


def family_mixture(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """A density written with tensors and `observe`: a mixture whose label is summed out (exact
    -log p(x)), one component without a latent, or a network of the label as the mean."""
    x = plan.main()
    k = pick.choice([1, 2, 3])
    shape = x.type.shape
    variant = pick.weighted({"mixture": 6, "no_latent": 2, "net_mean": 2})
    scale = b.number(0.5, "sd")
    if variant == "no_latent":
        loc = b.tensor(shape, "mu")
        scale = f"exp({b.tensor(shape, 'ls')})"
    else:
        c = b.fresh("c")
        label = TensorType(kind="cat", classes=k)
        if pick.chance(30):
            kname = b.fresh("K")
            b.params.append(f"param {kname}: int = {k}")
            b.tag("construct:param_in_type")
        else:
            kname = str(k)
        b.decls.append(f"latent {c}: cat[{kname}] ~ Categorical(logits = {b.tensor((k,), 'logits')})")
        b.tag("dist:Categorical", "construct:discrete_latent")
        if variant == "net_mean":
            net = b.fresh("mean_of")
            with b.scope(net):
                body = network_body(pick, b, [(c, label)], x.type.as_real(), depth=1)
            b.nets.append(net_text("net", net, [f"{c}: cat[{kname}]"], x.type.as_real(), body))
            loc = f"{net}({c})"
            b.tag("construct:net_call_label")
        else:
            loc = f"{b.tensor((k, *shape), 'mu')}[{c}]"
            scale = f"exp({b.tensor((k, *shape), 'ls')}[{c}])"
            b.tag("construct:index_label")
    family = "Bernoulli" if x.type.kind == "bin" else pick.choice(["Normal", "Normal", "Laplace"])
    args = f"logits = {loc}" if family == "Bernoulli" else f"{loc}, {scale}"
    b.decls.append(f"observe {x.name} ~ {family}({args})")
    loss = b.fresh("nll")
    b.losses.append(f"loss {loss} = -log p({x.name})")
    b.objectives.append(Objective(loss))
    b.samples.append(f"sample {x.name} ~ p({x.name})")
    b.caps |= {"likelihood", "samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:mixture", f"mixture:{variant}", f"dist:{family}", "construct:observe")


def gan_losses(pick: Picker, b: Builder, d: str, real_args: str, fake_args: str, critic: bool) -> tuple[str, str]:
    """(discriminator loss, generator loss) of a drawn GAN objective."""
    real_, fake = f"{d}({real_args})", f"{d}({fake_args})"
    if critic:
        penalty = pick.choice(["gp", "none"])
        d_loss = f"mean({fake}) - mean({real_})"
        if penalty == "gp" and "," not in real_args:
            d_loss += f" + {b.number(10.0, 'gp')} * gradient_penalty({d}, {real_args}, {fake_args})"
            b.tag("fn:gradient_penalty")
        b.tag("gan:wasserstein")
        return d_loss, f"-mean({fake})"
    kind = pick.choice(["ns", "minimax", "lsgan", "hinge", "r1"])
    b.tag(f"gan:{kind}")
    if kind == "lsgan":
        return f"mse({real_}, 1) + mse({fake}, 0)", f"mse({fake}, 1)"
    if kind == "hinge":
        return f"mean(relu(1 - {real_})) + mean(relu(1 + {fake}))", f"-mean({fake})"
    d_loss = f"bce({real_}, 1) + bce({fake}, 0)"
    if kind == "r1" and "," not in real_args:
        d_loss += f" + {b.number(1.0, 'gamma')} * r1_penalty({d}, {real_args})"
        b.tag("fn:r1_penalty")
    return d_loss, (f"-bce({fake}, 0)" if kind == "minimax" else f"bce({fake}, 1)")


def discriminator(pick: Picker, b: Builder, inputs: list[tuple[str, TensorType]], critic: bool) -> str:
    """A discriminator (or critic) of the inputs: one logit per sample, or a PatchGAN map."""
    name = b.fresh("C" if critic else "D")
    x = inputs[0][1]
    with b.scope(name):
        if not critic and len(inputs) == 1 and x.rank == 3 and min(x.shape[1:]) >= 4 and pick.chance(30):
            h = b.fresh("h")
            first = fixed("Conv2d", "Conv2d(2)", x, b, out=2)
            last = fixed("Conv2d", "Conv2d(1, kernel=4, stride=2, padding=1)", first.out, b, out=1, kernel=4,
                         stride=2, padding=1)
            body = [f"{h} = {inputs[0][0]} |> Conv2d(2) |> leaky_relu(0.2)", f"{h} |> {last.text}"]
            out: TensorType | str = last.out
            b.tag("gan:patch")
        elif b.known and pick.chance(5):  # no parameters: a step over it updates nothing
            out = "real"
            body = [f"mean(tanh({merge(pick, b, [Value(n, t) for n, t in inputs]).text}), dim=-1)"
                    if reduces_axes() else f"{inputs[0][0]} |> flatten |> relu"]
            b.tag("known:parameter_free_step")
        else:
            out = pick.choice(["logit", "real", "real[1]"])
            body = network_body(pick, b, inputs, real())
    role = "critic" if critic else "discriminator"
    b.nets.append(net_text(role, name, [input_decl(i, pick) for i in inputs], out, body))
    b.tag(f"role:{role}")
    return name


def family_gan(pick: Picker, b: Builder, plan: DataPlan) -> None:
    x = plan.main()
    labels = plan.labels(x)[:1] if pick.chance(40) else []
    z, g = b.fresh("z"), b.fresh("G")
    zt = real(pick.choice([1, 2, 4]))
    with b.scope(g):  # a learned prior is trained with the generator
        b.decls.append(f"latent {z}: {type_text(zt)} ~ {prior(pick, b, zt)}")
    final = pick.choice([None, "tanh"] + (["sigmoid"] if x.unit else []))
    g_inputs = [(z, zt)] + [(y.name, y.type) for y in labels]
    with b.scope(g):
        body = network_body(pick, b, g_inputs, x.type.as_real(), final)
    b.nets.append(net_text("generator", g, [input_decl(i, pick) for i in g_inputs], x.type.as_real(), body))
    b.tag("role:generator")
    critic = pick.chance(30)
    d = discriminator(pick, b, [(x.name, x.type.as_real())] + [(y.name, y.type) for y in labels], critic)
    given = "".join(f", {y.name}" for y in labels)
    fake = f"{g}({z}{given}){given}"
    d_loss, g_loss = gan_losses(pick, b, d, f"{x.name}{given}", fake, critic)
    dl, gl = b.fresh("d_loss"), b.fresh("g_loss")
    b.losses += [f"loss {dl} = {d_loss}", f"loss {gl} = {g_loss}"]
    b.objectives += [Objective(dl, [d], "critic"), Objective(gl, [g], "gen")]
    b.samples.append(f"sample {x.name} = {g}({z}{given})")
    b.caps |= {"samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:gan", "construct:steps")


def family_translation(pick: Picker, b: Builder, plan: DataPlan) -> None:
    a = plan.main()
    target = plan.second(a)
    paired = target.line == a.line
    g = b.fresh("G")
    with b.scope(g):
        body = network_body(pick, b, [(a.name, a.type)], target.type.as_real())
    b.nets.append(net_text("generator", g, [input_decl(a, pick)], target.type.as_real(), body))
    if pick.chance(40):
        loss = b.fresh("fit")
        b.losses.append(f"loss {loss} = {pick.choice(['mse', 'l1'])}({g}({a.name}), {target.name})")
        b.objectives.append(Objective(loss))
        b.tag("translation:regression")
    else:
        d = discriminator(pick, b, [(target.name, target.type.as_real())], critic=False)
        d_loss, g_loss = gan_losses(pick, b, d, target.name, f"{g}({a.name})", critic=False)
        if paired:
            g_loss += f" + {b.number(10.0, 'l1w')} * l1({g}({a.name}), {target.name})"
        dl, gl = b.fresh("d_loss"), b.fresh("g_loss")
        b.losses += [f"loss {dl} = {d_loss}", f"loss {gl} = {g_loss}"]
        b.objectives += [Objective(dl, [d], "critic"), Objective(gl, [g], "gen")]
        b.tag("translation:adversarial", "construct:steps")
    b.samples.append(f"sample {target.name} = {g}({a.name})")
    b.caps |= {"samples", "reconstruction"}
    b.tag("family:translation", "data:paired" if paired else "data:unpaired")


def invertible_stages(pick: Picker, b: Builder, x: TensorType, depth: int = 0) -> list[str]:
    stages = []
    for _ in range(pick.integer(1, 3)):
        roll = pick.weighted({"layer": 6, "repeat": 2 if depth == 0 else 0, "block": 1 if depth == 0 else 0})
        if roll == "repeat":
            inner = invertible_stages(pick, b, x, depth + 1)
            stages.append(f"repeat {pick.choice([0, 1, 2])} {{ {' |> '.join(inner)} }}")
            b.tag("construct:repeat_flow")
        elif roll == "block":
            name = b.fresh("Coupling")
            b.blocks.append(f"block {name}(width: int = 4) {{ AffineCoupling(hidden=[width]) |> ActNorm }}")
            stages.append(pick.choice([name, f"{name}(3)", f"{name}(width=2)"]))
            b.tag("construct:block_flow", "layer:AffineCoupling", "layer:ActNorm")
        else:
            name = pick.choice(INVERTIBLE_LAYERS)
            stage = layer_stage(pick, b, name, x, optional=50)
            if stage is not None:
                stages.append(stage.text)
    return stages or ["ActNorm"]


def family_flow(pick: Picker, b: Builder, plan: DataPlan) -> None:
    x = plan.main()
    z, f = b.fresh("z"), b.fresh("f")
    zt = x.type.as_real()
    kind = pick.weighted({"Normal": 6, "Laplace": 2, "learned": 1})
    with b.scope(f):
        p = f"Normal({b.tensor(zt.shape, 'mu')}, exp({b.tensor(zt.shape, 'ls')}))" if kind == "learned" \
            else f"{kind}(0, 1)"
    b.tag(f"prior:{kind}")
    b.decls.append(f"latent {z}: {type_text(zt)} ~ {p}")
    with b.scope(f):
        stages = invertible_stages(pick, b, zt)
    sep = pick.choice([" |> ", "\n  ", "; "])
    b.nets.append(f"flow {f}({input_decl(x, pick)}) <-> {z} {{\n  {sep.join(stages)}\n}}")
    loss = b.fresh("nll")
    b.losses.append(f"loss {loss} = -log p({x.name})")
    b.objectives.append(Objective(loss, over=[f] if pick.chance(40) else None))
    b.samples.append(pick.choice([f"sample {x.name} = {f}.inverse({z})", f"sample {x.name} ~ p({x.name})"]))
    b.caps |= {"likelihood", "samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:flow", "construct:flow")


def masked_trunk(pick: Picker, b: Builder, x: TensorType) -> list[Stage]:
    width = pick.choice([4, 8, 12])
    stages = [fixed("MaskedLinear", f"MaskedLinear({b.width(width)})", x, b, out=width)]
    for _ in range(pick.integer(0, 2)):
        roll = pick.choice(["act", "act", "masked", "dropout"])
        last = stages[-1].out
        if roll == "masked":
            width = pick.choice([4, 8])
            stages.append(fixed("MaskedLinear", f"MaskedLinear({width})", last, b, out=width))
        elif roll == "dropout":
            stages.append(fixed("Dropout", "Dropout(0.1)", last, b, p=0.1))
        else:
            stages.append(activation(pick, b, last))
    return stages


def family_made(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """MADE: masked linear layers; Bernoulli logits, or Normal with one or two masked heads."""
    x = plan.main()
    d = x.type.numel
    xv = Value(x.name, x.type)
    trunk = masked_trunk(pick, b, x.type)
    lines = []
    if pick.chance(60):
        h = b.fresh("h")
        lines.append(f"{h} = {pipe(xv, trunk).text}")
        source = Value(h, trunk[-1].out)
    else:
        source = pipe(xv, trunk)

    def head() -> str:
        return pipe(source, [fixed("MaskedLinear", f"MaskedLinear({d})", source.type, b, out=d)]).text

    if x.type.kind == "bin":
        lines.append(f"{x.name} ~ Bernoulli(logits = {head()})")
        b.tag("dist:Bernoulli")
        if b.known and pick.chance(30):  # a direct connection, as a second masked path
            direct = pipe(xv, [fixed("MaskedLinear", f"MaskedLinear({d})", x.type, b, out=d)]).text
            lines[-1] = f"{x.name} ~ Bernoulli(logits = ({direct}) + ({head()}))"
            b.tag("known:made_parallel")
    elif pick.chance(50):
        lines.append(f"{x.name} ~ Normal(loc = {head()}, scale = {b.number(0.5, 'sd')})")
        b.tag("dist:Normal")
    else:
        lines.append(f"{x.name} ~ Normal(loc = {head()}, scale = {head()} |> softplus)")
        b.tag("dist:Normal", "made:two_heads")
    b.nets.append(f"autoregressive p({x.name}) {{\n" + "\n".join("  " + line for line in lines) + "\n}")
    loss = b.fresh("nll")
    b.losses.append(f"loss {loss} = -log p({x.name})")
    b.objectives.append(Objective(loss))
    b.samples.append(f"sample {x.name} ~ p({x.name})")
    b.caps |= {"likelihood", "samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:made", "construct:autoregressive")


def family_pixelcnn(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """PixelCNN: a mask-A convolution, mask-B ones (perhaps in a repeat), 1x1 convolutions."""
    x = plan.main()
    channels, ch, kernel = x.type.shape[0], pick.choice([2, 4]), pick.choice([3, 5])
    first = fixed("MaskedConv2d", f"MaskedConv2d({ch}, kernel={kernel}, mask=A)", x.type, b, out=ch,
                  kernel=kernel, mask="A")
    stages = [first.text, pick.choice(["relu", "tanh", "silu"])]
    inner = f"MaskedConv2d({ch}, kernel=3, mask=B) |> relu"
    n = pick.choice([0, 1, 2])
    if pick.chance(50):
        stages.append(f"repeat {n} {{ {inner} }}")
        b.tag("construct:repeat")
    else:
        stages += [inner] * n
    stages += [f"Conv2d({ch}, kernel=1)", "relu"] if pick.chance(50) else []
    stages.append(f"Conv2d({channels}, kernel=1)")
    logits = f"{x.name} |> " + " |> ".join(stages)
    b.tag("layer:MaskedConv2d", "layer:Conv2d")
    if x.type.kind == "bin":
        draw = f"{x.name} ~ Bernoulli(logits = {logits})"
        b.tag("dist:Bernoulli")
    else:
        draw = f"{x.name} ~ Normal(loc = {logits}, scale = {b.number(0.3, 'sd')})"
        b.tag("dist:Normal")
    b.nets.append(f"autoregressive p({x.name}) {{\n  {draw}\n}}")
    loss = b.fresh("nll")
    b.losses.append(f"loss {loss} = -log p({x.name})")
    b.objectives.append(Objective(loss))
    b.samples.append(f"sample {x.name} ~ p({x.name})")
    b.caps |= {"likelihood", "samples"}
    b.tag("family:pixelcnn", "construct:autoregressive")


def family_diffusion(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """A Gaussian diffusion with a drawn noise schedule and a denoiser of (x_t, t)."""
    x = plan.main()
    q, eps, t = b.fresh("q"), b.fresh("eps"), b.fresh("t")
    betas = entry_call(pick, BETA_SCHEDULES, pick.choice(sorted(BETA_SCHEDULES)), optional=50)
    process = entry_call(pick, PROCESSES, "Gaussian", optional=60,
                         given={"betas": betas.text} if pick.chance(70) else None)
    text = process.text
    if not x.unit and process.values.get("levels"):
        text = re.sub(r"levels=\d+", "levels=0", text)  # quantized levels describe data in [0, 1]
    b.decls.append(f"diffusion {q}({x.name}) = {text}")
    b.tag(f"betas:{betas.text.split('(')[0]}", "construct:diffusion")
    xt = x.type.as_real()
    with b.scope(eps):
        if xt.rank == 3 and pick.chance(50):
            h, e = b.fresh("h"), b.fresh("e")
            body = [f"{h} = x_t |> Conv2d(2) |> relu",
                    f"{e} = sinusoidal({t}, 4) |> Linear(2) |> reshape(2, 1, 1)",
                    f"({h} + {e}) |> Conv2d({xt.shape[0]})"]
            b.tag("construct:broadcast_per_sample", "layer:Conv2d", "layer:Linear", "fn:sinusoidal")
        else:
            body = network_body(pick, b, [("x_t", xt), (t, TensorType(kind="step"))], xt)
    b.nets.append(net_text("denoiser", eps, [f"x_t: {type_text(xt)}", f"{t}: step"], xt, body))
    loss = b.fresh("simple")
    b.losses.append(f"loss {loss} = {q}.loss({eps})")
    b.objectives.append(Objective(loss, over=[eps] if pick.chance(40) else None))
    options = ""
    if b.known and pick.chance(10):
        options = pick.choice([", steps=3", ", eta=0"])
        b.tag("known:method_options")
    b.samples.append(f"sample {x.name} = {q}.reverse({eps}{options})")
    b.caps |= {"diffusion", "likelihood", "samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:diffusion", "role:denoiser")


def family_ebm(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """An energy network trained by contrastive divergence against a Langevin sampler."""
    x = plan.main()
    e, neg = b.fresh("E"), b.fresh("neg")
    labels = plan.labels(x)[:1] if b.known and pick.chance(30) else []  # an energy of two inputs
    inputs = [(x.name, x.type)] + [(y.name, y.type) for y in labels]
    with b.scope(e):
        body = network_body(pick, b, inputs, real())
    b.nets.append(net_text("energy", e, [input_decl(i, pick) for i in inputs],
                           pick.choice(["real", "real[1]", None]), body))
    call = entry_call(pick, SAMPLERS, "Langevin", optional=50, given={"energy": e})
    b.nets.append(f"sampler {neg} = {call.text}")
    alpha = b.number(0.1, "reg")
    given = "".join(f", {y.name}" for y in labels)
    if labels:
        b.tag("known:langevin_two_inputs")
    loss = b.fresh("cd")
    b.losses.append(f"loss {loss} = mean({e}({x.name}{given})) - mean({e}({neg}{given})) + {alpha} * "
                    f"(mean({e}({x.name}{given}) ^ 2) + mean({e}({neg}{given}) ^ 2))")
    b.objectives.append(Objective(loss, over=[e] if pick.chance(50) else None))
    b.samples.append(f"sample {x.name} = {neg}")
    b.caps |= {"samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:ebm", "role:energy", "construct:sampler")


def fits(family: str, plan: DataPlan) -> bool:
    x = plan.main()
    t = x.type
    if family in ("gan", "ebm", "diffusion"):
        return t.kind == "real"
    if family == "flow":
        return t.kind == "real" and t.rank == 1 and t.numel >= 2
    if family == "made":
        return t.rank == 1
    if family == "pixelcnn":
        return t.rank == 3 and t.shape[1] >= 3
    if family == "translation":
        return plan.second(x) is not None
    return True


FAMILIES = {"autoencoder": (family_autoencoder, 3), "vae": (family_vae, 4),
            "observe_latent": (family_observe_latent, 2), "mixture": (family_mixture, 3),
            "gan": (family_gan, 4), "translation": (family_translation, 3), "flow": (family_flow, 3),
            "made": (family_made, 3), "pixelcnn": (family_pixelcnn, 2), "diffusion": (family_diffusion, 3),
            "ebm": (family_ebm, 2)}


# ---- train, sample and evaluate ---------------------------------------------------------------

def optimizer(pick: Picker, b: Builder) -> str:
    name = pick.choice(sorted(OPTIMIZERS))
    call = entry_call(pick, OPTIMIZERS, name, optional=40)
    b.tag(f"optimizer:{name}")
    return call.text if call else "Adam"


BATCH = "@BATCH@"  # where a loss needs the batch size the train block sets


def settings_lines(pick: Picker, b: Builder) -> list[str]:
    b.batch = pick.choice([2, 4, 8, 16])
    lines = [f"batch {b.batch}"]
    lines.append(pick.choice(["steps 2", "steps 3", "epochs 1"]))
    if pick.chance(30):
        lines.append(f"optimizer {optimizer(pick, b)}")
        b.tag("setting:optimizer")
    if pick.chance(30):
        name = pick.choice(sorted(SCHEDULES))
        call = entry_call(pick, SCHEDULES, name, optional=50)
        if call:
            lines.append(f"schedule {call.text}")
            b.tag(f"schedule:{name}", "setting:schedule")
    for name, values in (("clip", [0.0, 0.5, 1.0]), ("ema", [0.0, 0.5, 0.999, 1.0]), ("seed", [0, 7]),
                         ("log_every", [1, 100]), ("checkpoint_every", [1, 1000]), ("sample_every", [0, 1]),
                         ("eval_batch", [1, 7, 64])):
        assert name in SETTINGS
        if pick.chance(15):
            lines.append(f"{name} {literal(pick.choice(values))}")
            b.tag(f"setting:{name}")
    return lines


def render_train(pick: Picker, b: Builder) -> str:
    lines = []
    single = len(b.objectives) == 1 and b.objectives[0].step is None and pick.chance(80)
    if single:
        o = b.objectives[0]
        text = f"minimize {o.loss}"
        if o.over:
            text += f" over {', '.join(b.expand(o.over))}"
        if pick.chance(30):
            text += f" with {optimizer(pick, b)}"
        lines.append(text)
        b.tag("train:minimize")
    else:
        for o in b.objectives:
            step = o.step or b.fresh("s")
            over = b.expand(o.over or trainables(b))
            text = f"step {step}: minimize {o.loss} over {', '.join(over)}"
            if pick.chance(50):
                text += ("\n    with " if pick.chance(30) else " with ") + optimizer(pick, b)
            if pick.chance(30):
                text += f" repeat {pick.choice([1, 2])}"
                b.tag("train:repeat")
            lines.append(text)
        b.tag("train:steps")
    lines += settings_lines(pick, b)
    if pick.chance(40):
        return "train { " + "; ".join(lines) + " }" if "\n" not in "".join(lines) else \
            "train {\n" + "\n".join("  " + l for l in lines) + "\n}"
    return "train {\n" + "\n".join("  " + l for l in lines) + "\n}"


def trainables(b: Builder) -> list[str]:
    """Names with parameters, read back from the declarations (networks, flows, tensors, densities)."""
    names = []
    for line in b.nets + b.decls:
        m = re.match(r"(generator|discriminator|critic|energy|denoiser|net|flow) (\w+)", line)
        if m:
            names.append(m.group(2))
        m = re.match(r"(encoder|decoder|autoregressive) (\w+)", line)
        if m and m.group(2) not in names:
            names.append(m.group(2))
        m = re.match(r"tensor (\w+)", line)
        if m:
            names.append(m.group(1))
    return names


def render_evaluate(pick: Picker, b: Builder) -> str:
    usable = [name for name in sorted(METRICS) if metric_needs(name) in b.caps]
    others = [name for name in sorted(METRICS) if name not in usable]
    chosen = pick.some(usable, 1, 4)
    if others and pick.chance(10):
        chosen.append(pick.choice(others))  # a metric the model cannot have: check must refuse it
        b.tag("evaluate:unusable")
    items = []
    for name in chosen:
        # a small sample count always: the defaults (2,000 draws) take minutes on an
        # autoregressive model of 784 pixels
        call = entry_call(pick, METRICS, name, optional=60, always=frozenset({"samples"}))
        text = call.text if call else name
        if pick.chance(20):
            text = f"{b.fresh('m')} = {text}"
        items.append(text)
        b.tag(f"metric:{name}")
    if pick.chance(50):
        return "evaluate { " + "; ".join(items) + " }"
    return "evaluate {\n" + "\n".join("  " + i for i in items) + "\n}"


def draw_overrides(pick: Picker, b: Builder) -> list[str]:
    """`--set` values for some params: widths doubled or kept, floats changed."""
    out = []
    for name, value in b.width_params.items():
        if pick.chance(30):
            out.append(f"{name}={value * pick.choice([1, 2])}")
    for name, value in b.float_params.items():
        if pick.chance(30):
            out.append(f"{name}={pick.choice([0.5, 1, 2.0]) * value:g}")
    if out:
        b.tag("construct:set")
    return out


def generate(pick: Picker) -> Case:
    """A random spec built by construction (see the module docstring)."""
    b = Builder(pick)
    lines = 2 if pick.chance(20) else 1
    plan = draw_data(pick, b, lines)
    weights = {name: w for name, (_, w) in FAMILIES.items() if fits(name, plan)}
    family = pick.weighted(weights)
    FAMILIES[family][0](pick, b, plan)
    b.train_text = render_train(pick, b)
    b.losses = [line.replace(BATCH, str(b.batch)) for line in b.losses]
    if pick.chance(80):
        b.evaluate_text = render_evaluate(pick, b)
    overrides = draw_overrides(pick, b)
    imports: tuple[tuple[str, str], ...] = ()
    if b.blocks and pick.chance(30):  # the blocks in a file of their own, imported
        imports = (("blocks.gen", "\n\n".join(b.blocks) + "\n"),)
        text = 'import "blocks.gen"\n\n' + b.text(pick.choice(["M", "Model", "Gen"]), blocks=False)
        b.tag("construct:import")
    else:
        text = b.text(pick.choice(["M", "Model", "Gen"]))
    if pick.chance(8) and b.width_params:
        name, value = next(iter(b.width_params.items()))
        parent = text.split("model ")[-1].split(" ")[0]
        text += f"\nmodel Child extends {parent} {{\n  param {name}: int = {value}\n}}\n"
        b.tag("construct:extends")
    return Case(text=text, overrides=tuple(overrides), files=tuple(b.files), origin=f"generated {family}",
                imports=imports,
                via_cli=pick.chance(30), resume=pick.chance(15),
                tags=frozenset(b.tags), data_problem=b.data_problem)


# ---- mutations of the reference specs ---------------------------------------------------------

REFERENCES = sorted((ROOT / "specs").glob("*.gen")) + sorted((ROOT / "tests" / "specs").glob("*.gen"))
ACTIVATION_NAMES = sorted(ACTIVATIONS) + ["leaky_relu"]
PARAM = re.compile(r"^\s*param (\w+): (int|float|bool|str) = (.+?)\s*(#.*)?$", re.M)
STAGE_CALL = re.compile(r"\|>\s*([A-Z]\w*)(\([^()]*(?:\([^()]*\)[^()]*)*\))?")


def with_imports(path: Path) -> str:
    """The text of a reference spec and of the files it imports (to find inherited params)."""
    text = path.read_text(encoding="utf-8")
    for name in re.findall(r'^import "([^"]+)"', text, re.M):
        text += "\n" + (path.parent / name).read_text(encoding="utf-8")
    return text


def dims_params(text: str, data_only: bool = False) -> set[str]:
    """Params that appear in a type (in a `data` line only, with `data_only`)."""
    lines = "\n".join(re.findall(r"^\s*data .*$", text, re.M)) if data_only else text
    return {name for inside in re.findall(r"(?:real|bin|int|cat)\[([^\]]*)\]", lines)
            for name in re.findall(r"[A-Za-z_]\w*", inside)}


def shrink_params(pick: Picker, text: str) -> list[str]:
    """`--set` values that make a reference spec tiny: widths, depths and repeat counts."""
    shapes = dims_params(text)
    out = {}
    for name, kind, value, _ in PARAM.findall(text):
        if kind == "int" and name not in shapes and name not in out and value.isdigit() and int(value) > 3:
            out[name] = f"{name}={pick.choice([1, 2, 4] if int(value) <= 16 else [2, 4, 8])}"
    return list(out.values())


SHARED_SOURCES = {
    "binarized_mnist": ((784,), ["binary"]),
    "mnist_idx": ((28, 28), ["unit", "labels"]),
    "paired_mnist": ((28, 28), ["binary", "unit", "labels"]),
}


def shrink_data(pick: Picker, text: str, files: list[DataFile], tags: set[str]) -> str:
    """Big sources become tiny files of the same shapes, synthetic sources get a small n, and
    diffusions a few steps (sampling and the bound loop over every step)."""
    for source, (shape, kinds) in SHARED_SOURCES.items():
        call = re.search(rf"\b{source}\(\)", text)
        if call:
            name = f"{source}.npz"
            arrays = tuple((f"k{i}", Array(30, () if kind == "labels" else shape, kind, 10 if kind == "labels" else 0))
                           for i, kind in enumerate(kinds))
            if name not in {f.name for f in files}:
                files.append(DataFile(name, arrays))
            text = text[:call.start()] + f'npz(path="{DATA_DIR}/{name}")' + text[call.end():]
            tags.add(f"mutation:tiny_{source}")

    def small_n(match: re.Match) -> str:
        args = [a.strip() for a in match.group(2).split(",") if a.strip() and not re.match(r"n\s*=", a.strip())]
        n = pick.choice(POOLS["n"])
        return f"{match.group(1)}({', '.join([f'n={n}'] + args)})"

    text = re.sub(r"\b(ring|grid|moons|circles|swiss_roll)\(([^()]*)\)", small_n, text)
    return re.sub(r"\b(Gaussian\(steps=)(\d+)", lambda m: m.group(1) + str(pick.choice([2, 5, 10])), text)


def shrunk_parent_lines(pick: Picker, imported: str, files: list[DataFile], tags: set[str]) -> list[str]:
    """Statements of an imported parent that `shrink_data` would change, changed: appended to a
    child model they replace the parent's (same data variables, same diffusion name)."""
    out = []
    for line in re.findall(r"^\s*((?:data|diffusion) .*?)\s*(?:#.*)?$", imported, re.M):
        small = shrink_data(pick, line, files, tags)
        if small != line:
            out.append(small)
    return out


def add_to_last_model(text: str, lines: list[str]) -> str:
    if not lines:
        return text
    end = text.rstrip().rfind("}")
    return text[:end] + "".join(f"  {line}\n" for line in lines) + text[end:]


def mutate_set_param(pick: Picker, text: str, case: dict) -> str:
    params = PARAM.findall(with_imports_text(case))
    if not params:
        return text
    name, kind, value, _ = pick.choice(params)
    new = {"int": lambda: pick.choice([1, 2, 3, 8]), "float": lambda: pick.choice([0, 0.5, 2.0, -1.0, 1e-3]),
           "bool": lambda: pick.choice(["true", "false"]), "str": lambda: None}[kind]()
    if new is not None:
        case["overrides"] = [o for o in case["overrides"] if not o.startswith(f"{name}=")] + [f"{name}={new}"]
        if name in dims_params(with_imports_text(case), data_only=True) and "npz(" in with_imports_text(case):
            case["data_problem"] = True  # a declared shape a file may not have: E403 is the answer
    return text


def with_imports_text(case: dict) -> str:
    return case["text"] + "\n" + case["imported"]


def mutate_activation(pick: Picker, text: str, case: dict) -> str:
    spots = list(re.finditer(r"\|>\s*(" + "|".join(ACTIVATION_NAMES) + r")\b(\([^()]*\))?", text))
    if not spots:
        return text
    spot = pick.choice(spots)
    name = pick.choice(ACTIVATION_NAMES)
    new = f"|> {name}" + (f"({pick.choice([0.01, 0.2])})" if name == "leaky_relu" else "")
    return text[:spot.start()] + new + text[spot.end():]


SWAPS = {
    "Linear": ["Linear({0}, bias=false)", "Linear({0})"],
    "Conv2d": ["Conv2d({0}, kernel=1)", "Conv2d({0}, kernel=5)", "Conv2d({0})"],
    "AffineCoupling": ["SplineCoupling(bins=4, hidden=[4])", "AffineCoupling(mask=checker, hidden=[3])",
                       "AffineCoupling(mask=odd, hidden=[])"],
    "SplineCoupling": ["AffineCoupling(hidden=[4])", "SplineCoupling(bins=2, bound=1.0, hidden=[2])"],
    "ActNorm": ["InvertibleLinear", "Reverse", "ActNorm |> InvertibleLinear"],
    "MaskedConv2d": ["MaskedConv2d({0}, kernel=5, mask=B)", "MaskedConv2d({0}, kernel=1, mask=B)"],
    "MaskedLinear": ["MaskedLinear({0})"],
}
INSERTS = ["LayerNorm", "BatchNorm", "Dropout(0.1)", "identity", "SelfAttention(heads=1)",
           "GroupNorm(groups=1)", "MaxPool2d |> Upsample", "AvgPool2d(kernel=1)"]


def mutate_layer(pick: Picker, text: str, case: dict) -> str:
    """Swap a layer for a registry neighbour of the same shape, insert a shape-keeping layer after
    a stage, or (rarely) put any registry layer in its place."""
    spots = list(STAGE_CALL.finditer(text))
    if not spots:
        return text
    spot = pick.choice(spots)
    name, args = spot.group(1), (spot.group(2) or "()")[1:-1]
    first = args.split(",")[0].strip() if args else ""
    roll = pick.weighted({"swap": 5, "insert": 3, "any": 1})
    if roll == "swap" and name in SWAPS:
        new = "|> " + pick.choice(SWAPS[name]).format(first)
        case["tags"].add(f"mutation:swap_{name}")
    elif roll == "insert":
        new = spot.group(0) + " |> " + pick.choice(INSERTS)
        case["tags"].add("mutation:insert_layer")
    else:
        other = pick.choice(sorted(LAYERS))
        new = f"|> {other}" + (f"({first})" if first and pick.chance(50) else "")
        case["tags"].add("mutation:any_layer")
    return text[:spot.start()] + new + text[spot.end():]


def mutate_width(pick: Picker, text: str, case: dict) -> str:
    spots = list(re.finditer(r"\b(Linear|Conv2d|MaskedConv2d|MaskedLinear|ConvTranspose2d)\((\d+)", text))
    spots += list(re.finditer(r"\b(hidden)=\[(\d+)", text))
    if not spots:
        return text
    spot = pick.choice(spots)
    return text[:spot.start(2)] + str(pick.choice([1, 2, 3, 5])) + text[spot.end(2):]


def train_block(text: str) -> tuple[int, int] | None:
    """(start, end) of the last train block's braces, or None."""
    start = text.rfind("train {")
    if start < 0:
        return None
    depth = 0
    for i in range(start + 6, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return start, i
    return None


def mutate_optimizer(pick: Picker, text: str, case: dict) -> str:
    name = pick.choice(sorted(OPTIMIZERS))
    call = entry_call(pick, OPTIMIZERS, name, optional=50)
    spots = list(re.finditer(r"\b(Adam|AdamW|SGD|RMSprop)\b(\([^()]*(?:\([^()]*\)[^()]*)*\))?", text))
    case["tags"].add(f"optimizer:{name}")
    if spots and pick.chance(70):
        spot = pick.choice(spots)
        return text[:spot.start()] + call.text + text[spot.end():]
    block = train_block(text)
    if block is None:
        return text
    return text[:block[1]] + f"; optimizer {call.text} " + text[block[1]:]


def mutate_setting(pick: Picker, text: str, case: dict) -> str:
    block = train_block(text)
    if block is None:
        return text
    setting = pick.choice(["schedule", "clip", "ema", "batch", "length", "eval_batch", "log_every"])
    case["tags"].add(f"setting:{setting}")
    if setting == "schedule":
        name = pick.choice(sorted(SCHEDULES))
        call = entry_call(pick, SCHEDULES, name, optional=50)
        line = f"schedule {call.text}"
        case["tags"].add(f"schedule:{name}")
    elif setting == "length":
        line = pick.choice(["steps 2", "epochs 1"])
        inner = re.sub(r"\b(steps|epochs) \d+", "", text[block[0]:block[1]])
        text = text[:block[0]] + inner + text[block[1]:]
        block = train_block(text)
    elif setting == "batch":
        line = f"batch {pick.choice([1, 2, 3, 16])}"
        inner = re.sub(r"\bbatch \d+", line, text[block[0]:block[1]])
        return text[:block[0]] + inner + text[block[1]:]
    else:
        values = {"clip": [0.0, 1.0], "ema": [0.0, 0.9, 1.0], "eval_batch": [1, 3], "log_every": [1]}
        line = f"{setting} {pick.choice(values[setting])}"
    return text[:block[1]] + f"; {line} " + text[block[1]:]


def mutate_metrics(pick: Picker, text: str, case: dict) -> str:
    items = []
    for name in pick.some(sorted(METRICS), 1, 3):
        call = entry_call(pick, METRICS, name, optional=70, always=frozenset({"samples"}))
        items.append(call.text if call else name)
        case["tags"].add(f"metric:{name}")
    block = f"evaluate {{ {'; '.join(items)} }}"
    found = re.search(r"evaluate \{[^}]*\}", text)
    if found:
        return text[:found.start()] + block + text[found.end():]
    end = text.rstrip().rfind("}")
    return text[:end] + f"  {block}\n" + text[end:]


def mutate_distribution(pick: Picker, text: str, case: dict) -> str:
    spots = list(re.finditer(r"\b(Normal|Laplace)\(", text)) + list(re.finditer(r"\bNormal\(0, 1\)", text))
    if not spots:
        return text
    spot = pick.choice(spots)
    new = "Uniform(-1, 1)" if spot.group(0) == "Normal(0, 1)" and pick.chance(50) else \
        ("Laplace(" if spot.group(0).startswith("Normal") else "Normal(") + spot.group(0)[spot.group(0).index("(") + 1:]
    return text[:spot.start()] + new + text[spot.end():]


def mutate_statement(pick: Picker, text: str, case: dict) -> str:
    """Drop or duplicate one statement line of the model."""
    lines = text.split("\n")
    candidates = [i for i, line in enumerate(lines)
                  if re.match(r"\s+(param|latent|tensor|loss|sample|observe|data)\b", line)]
    if not candidates:
        return text
    i = pick.choice(candidates)
    if pick.chance(50):
        del lines[i]
        case["tags"].add("mutation:drop_statement")
    else:
        lines.insert(i, lines[i])
        case["tags"].add("mutation:duplicate_statement")
    return "\n".join(lines)


def mutate_source_options(pick: Picker, text: str, case: dict) -> str:
    spots = list(re.finditer(r"\b(ring|grid|moons|circles|swiss_roll)\(([^()]*)\)", text))
    if not spots:
        return text
    spot = pick.choice(spots)
    source = pick.choice(SYNTHETIC) if pick.chance(50) else spot.group(1)
    call = entry_call(pick, SOURCES, source, optional=60, given={"n": str(pick.choice(POOLS["n"]))})
    case["tags"].add(f"source:{source}")
    return text[:spot.start()] + call.text + text[spot.end():]


MUTATIONS = {"set_param": (mutate_set_param, 4), "activation": (mutate_activation, 3),
             "layer": (mutate_layer, 4), "width": (mutate_width, 2), "optimizer": (mutate_optimizer, 2),
             "setting": (mutate_setting, 3), "metrics": (mutate_metrics, 3),
             "distribution": (mutate_distribution, 2), "statement": (mutate_statement, 1),
             "source_options": (mutate_source_options, 1)}


def mutate(pick: Picker) -> Case:
    """A reference spec made tiny, then changed by one to three mutations."""
    path = pick.choice(REFERENCES)
    original = path.read_text(encoding="utf-8")
    imported = with_imports(path)[len(original):]
    files: list[DataFile] = []
    tags: set[str] = {f"reference:{path.stem}"}
    text = shrink_data(pick, original, files, tags)
    if imported and not re.search(r"^\s*data ", original, re.M) or "diffusion" in imported:
        text = add_to_last_model(text, [line for line in shrunk_parent_lines(pick, imported, files, tags)
                                        if line.split("=")[0].split(":")[0] not in text])
    case = {"text": text, "imported": imported, "overrides": shrink_params(pick, original + imported), "tags": tags,
            "data_problem": False}
    applied = []
    for _ in range(pick.integer(1, 3)):
        kind = pick.weighted({k: w for k, (_, w) in MUTATIONS.items()})
        case["text"] = MUTATIONS[kind][0](pick, case["text"], case)
        applied.append(kind)
        tags.add(f"mutation:{kind}")
    relative = path.relative_to(ROOT).as_posix()
    return Case(text=case["text"], overrides=tuple(case["overrides"]), files=tuple(files),
                origin=f"mutated {relative}: {', '.join(applied)}", tags=frozenset(tags), path=relative,
                data_problem=case["data_problem"], via_cli=pick.chance(30), resume=pick.chance(15))


# ---- hypothesis strategies --------------------------------------------------------------------
# Hypothesis draws one seed per case, and a `random.Random` makes every choice from it: the
# choices keep the weights written above (hypothesis' own integers favour the ends of their
# ranges, which would make every rare construct common), and a case is reproduced from its seed,
# which its origin shows: `generate(Picker(rng=random.Random(SEED)))`.

SEEDS = st.integers(0, 2 ** 32 - 1)


def seeded(make: Callable[[Picker], Case], seed: int) -> Case:
    case = make(Picker(rng=random.Random(seed)))
    return replace(case, origin=f"{case.origin} (seed {seed})")


@st.composite
def generated_cases(draw) -> Case:
    """A spec drawn by construction (`generate`)."""
    return seeded(generate, draw(SEEDS))


@st.composite
def mutated_cases(draw) -> Case:
    """A reference spec made tiny and mutated (`mutate`)."""
    return seeded(mutate, draw(SEEDS))


@st.composite
def cases(draw, mutated_percent: int = 30) -> Case:
    """Generated specs, and mutated reference specs `mutated_percent` of the time."""
    seed = draw(SEEDS)
    return seeded(mutate if seed % 100 < mutated_percent else generate, seed)
