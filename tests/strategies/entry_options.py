"""Registry entries called with options drawn from their signatures and accepted by their rules."""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from gendsl.library.entries import Registry
from gendsl.library.signature import EntryError, bind, call_rule, parameters
from tests.strategies.gen_text import literal
from tests.strategies.picker import Picker


# ---- registry entries with drawn options ------------------------------------------------------


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
