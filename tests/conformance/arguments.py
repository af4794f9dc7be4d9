"""Example arguments for registry entries, drawn from their signatures: what the conformance
test writes into specs to prove that each entry checks, renders, emits and runs.

`configurations(entry)` yields argument lists as spec text (`4, mask=A`): first the required
arguments alone, then each optional argument set to one other value. Which of them an entry
accepts is for its own rule to say.
"""

from __future__ import annotations

import inspect
import itertools
import typing
from typing import Annotated, Any, Iterator, Literal

from gendsl.library.entries import Entry
from gendsl.library.signature import Range, is_operand, parameters

INTS = (4, 2, 1, 3, 8)
FLOATS = (0.5, 0.1, 2.0)


def candidates(annotation: Any) -> list[str]:
    """Spec texts of values of a constant option (none for paths: a test gives those)."""
    if typing.get_origin(annotation) is Annotated:  # a number with its range: values inside it
        base, *extras = typing.get_args(annotation)
        bounds = next(e for e in extras if isinstance(e, Range))
        return [v for v in candidates(base) if bounds.holds(float(v))]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is int:
        return [str(v) for v in INTS]
    if annotation is float:
        return [repr(v) for v in FLOATS]
    if annotation is bool:
        return ["false", "true"]
    if origin is Literal:
        return [str(a) for a in args]
    if origin is list:
        inner = candidates(args[0]) if args else []
        return [f"[{inner[0]}]", f"[{inner[0]}, {inner[0]}]"] if inner else []
    if origin is tuple:
        parts = [candidates(a) for a in args if a is not Ellipsis]
        return [f"({', '.join(p[0] for p in parts)})"] if parts and all(parts) else []
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        out: list[str] = []
        for option in args:
            out += ["none"] if option is type(None) else candidates(option)
        return out
    return []


def configurations(entry: Entry, numel: int = 1, limit: int = 3) -> Iterator[list[str]]:
    """Argument lists (spec text, positional then keyword) for the entry's constant options; a
    variadic list of sizes (reshape's dims) gets shapes with `numel` values."""
    params = [p for p in parameters(entry.rule, entry.skip) if not is_operand(p.annotation)]
    required = [p for p in params if p.default is inspect.Parameter.empty
                and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    variadic = [p for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL]
    optional = [p for p in params if p not in required and p not in variadic]
    pools = [candidates(p.annotation)[:limit] for p in required]
    shapes = [[str(numel)], ["2", str(numel // 2)]] if variadic else [[]]
    for values in itertools.product(*pools):
        for shape in shapes:
            yield shape + [f"{p.name}={v}" for p, v in zip(required, values)]
        base = shapes[0] + [f"{p.name}={v}" for p, v in zip(required, values)]
        for p in optional:
            for value in candidates(p.annotation)[:limit]:
                yield base + [f"{p.name}={value}"]
