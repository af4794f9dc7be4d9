"""Binding call arguments to a library entry's signature.

An entry's signature is an ordinary Python signature whose annotations are the argument types
accepted in specs: int, float, bool, str, list[int], list[float], tuple[float, float],
Literal["A", "B"] (bare names in specs, e.g. `mask=A`), or Any (checked by the entry itself).
A number may carry its range: `Count` (an int >= 1), `Size` (>= 0), `Positive` (a float > 0),
`NonNegative` (>= 0), `Fraction` (in [0, 1]), or any `Annotated[int | float, Range(...)]`; a value
out of range is a binding problem like a value of the wrong type.
Binding returns the values or a list of problems, each a (message, hint) pair.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal

from gendsl.diagnostics import did_you_mean


@dataclass(frozen=True)
class Symbol:
    """A bare name used as an argument value, such as `A` in `MaskedConv2d(64, mask=A)`."""

    name: str


class EntryError(Exception):
    """Raised by an entry's rule when its inputs do not fit; becomes a diagnostic at the call."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class Range:
    """The values a numeric option accepts: from low to high, each end included unless open."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def holds(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.open_low else value >= self.low)
        below = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return above and below

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.open_low else '>='} {_number(self.low)}"
        return (f"in {'(' if self.open_low else '['}{_number(self.low)}, {_number(self.high)}"
                f"{')' if self.open_high else ']'}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


Count = Annotated[int, Range(1)]                 # sizes, widths, strides, counts
Size = Annotated[int, Range(0)]                  # paddings, buffers
Positive = Annotated[float, Range(0, open_low=True)]
NonNegative = Annotated[float, Range(0)]
Fraction = Annotated[float, Range(0, 1)]


def _range_of(annotation: Any) -> tuple[Any, Range | None]:
    """(the annotation without its range, the range) of an Annotated number."""
    if typing.get_origin(annotation) is Annotated:
        base, *extras = typing.get_args(annotation)
        return base, next((e for e in extras if isinstance(e, Range)), None)
    return annotation, None


@functools.lru_cache(maxsize=None)
def parameters(fn: Callable, skip: int) -> tuple[inspect.Parameter, ...]:
    """The user-visible parameters of an entry (the first `skip` are filled by the compiler)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    params = list(inspect.signature(fn).parameters.values())[skip:]
    return tuple(p.replace(annotation=hints.get(p.name, Any)) for p in params)


@functools.lru_cache(maxsize=None)  # bind() quotes it in its problems: once per entry, not per call
def describe_signature(name: str, fn: Callable, skip: int) -> str:
    """`Linear(out: int, bias: bool = true)`: how docs and hints show an entry."""
    parts = []
    for p in parameters(fn, skip):
        text = f"{p.name}: {type_name(p.annotation)}"
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            text = f"{p.name}..."
        elif p.default is not inspect.Parameter.empty:
            literal = typing.get_origin(p.annotation) is Literal
            text += f" = {p.default if literal else format_value(p.default)}"
        parts.append(text)
    return f"{name}({', '.join(parts)})"


_FRIENDLY = {"TensorType": "tensor", "NumberType": "number", "NetType": "network", "Type": "value"}


def _is_union(origin: Any) -> bool:
    return origin is typing.Union or origin is types.UnionType


def type_name(annotation: Any) -> str:
    base, bounds = _range_of(annotation)
    if bounds is not None:
        return f"{type_name(base)} {bounds.describe()}"
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(str(a) for a in typing.get_args(annotation))
    if origin in (list, tuple):
        inner = ", ".join(type_name(a) for a in typing.get_args(annotation) if a is not Ellipsis)
        return f"{origin.__name__}[{inner}]"
    if _is_union(origin):
        names = dict.fromkeys(type_name(a) for a in typing.get_args(annotation) if a is not type(None))
        return " | ".join(names)
    name = getattr(annotation, "__name__", str(annotation))
    return _FRIENDLY.get(name, name)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, Symbol):
        return value.name
    if hasattr(value, "describe"):  # a type given where a constant is expected
        return value.describe()
    return repr(value) if isinstance(value, str) else str(value)


def _option_names(annotation: Any) -> set[str]:
    annotation = _range_of(annotation)[0]
    options = typing.get_args(annotation) if _is_union(typing.get_origin(annotation)) else (annotation,)
    return {getattr(o, "__name__", "") for o in options}


def takes_symbols(annotation: Any) -> bool:
    """Does a parameter accept bare words (`mask=A`, `causal=strict`): a Literal, alone or in a union?"""
    options = typing.get_args(annotation) if _is_union(typing.get_origin(annotation)) else (annotation,)
    return any(typing.get_origin(o) is Literal for o in options)


def is_operand(annotation: Any) -> bool:
    """Does a parameter take a run-time value (a tensor, a network) rather than an option?"""
    return bool(_option_names(annotation) & {"TensorType", "NetType", "Type"})


def coerce(value: Any, annotation: Any) -> tuple[bool, Any]:
    """Check a constant against an annotation; ints widen to floats, lists to tuples."""
    base, bounds = _range_of(annotation)
    if bounds is not None:
        ok, value = coerce(value, base)
        return ok and bounds.holds(value), value
    if annotation is Any:
        return True, value
    if type(value).__name__ == "NumberType" and not (_option_names(annotation) & {"TensorType", "NumberType"}):
        value = value.value  # a literal given where an option is expected
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if _is_union(origin):
        for option in args:
            if option is type(None) and value is None:
                return True, None
            ok, coerced = coerce(value, option)
            if ok:
                return True, coerced
        return False, value
    if origin is Literal:
        name = value.name if isinstance(value, Symbol) else value
        return (name in args), name
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            if origin is list and args:  # a single value where a list is accepted
                ok, item = coerce(value, args[0])
                return ok, [item] if ok else value
            return False, value
        item_types = args if origin is tuple and Ellipsis not in args else [args[0] if args else Any] * len(value)
        if len(item_types) != len(value):
            return False, value
        items = [coerce(v, t) for v, t in zip(value, item_types)]
        if not all(ok for ok, _ in items):
            return False, value
        return True, origin(v for _, v in items)
    if annotation is float:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)), float(value) if isinstance(value, (int, float)) else value
    if annotation is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is str:
        return isinstance(value, str), value
    return isinstance(value, annotation), value


def bind(name: str, fn: Callable, args: list[Any], kwargs: dict[str, Any], skip: int = 0
         ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Match constant arguments to an entry: (values by name, problems)."""
    params = parameters(fn, skip)
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    signature = describe_signature(name, fn, skip)
    variadic = next((p for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
    # parameters after a variadic one can only be given by name (as in Python)
    positional = params[:params.index(variadic)] if variadic is not None else list(params)
    if len(args) > len(positional) and variadic is None:
        problems.append((f"{name} takes at most {len(positional)} positional argument"
                         f"{'s' if len(positional) != 1 else ''}, got {len(args)}", signature))
    for p, value in zip(positional, args):
        values[p.name] = value
    if variadic is not None:
        values[variadic.name] = list(args[len(positional):])
    names = {p.name for p in params}
    for key, value in kwargs.items():
        if key not in names:
            hint = did_you_mean(key, names) or signature
            problems.append((f"{name} has no argument '{key}'", hint))
        elif key in values:
            problems.append((f"{name} got '{key}' twice", signature))
        else:
            values[key] = value
    for p in params:
        if p.name not in values:
            if p.default is inspect.Parameter.empty and p.kind is not inspect.Parameter.VAR_POSITIONAL:
                problems.append((f"{name} needs the argument '{p.name}'", signature))
            elif p.default is not inspect.Parameter.empty:
                values[p.name] = p.default
            continue
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        ok, coerced = coerce(values[p.name], p.annotation)
        if not ok:
            problems.append((f"{name}: '{p.name}' must be {type_name(p.annotation)}, "
                             f"got {format_value(values[p.name])}", signature))
        values[p.name] = coerced
    return values, problems


def arguments_by_name(fn: Callable, args: list[Any], kwargs: dict[str, Any], skip: int) -> dict[str, Any]:
    """Which parameter each argument lands on (variadic ones collect a list)."""
    named: dict[str, Any] = {}
    rest = list(args)
    for p in parameters(fn, skip):
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            named[p.name], rest = rest, []
        elif rest:
            named[p.name] = rest.pop(0)
    return {**named, **{k: v for k, v in kwargs.items()}}


def call_rule(fn: Callable, leading: list[Any], values: dict[str, Any], skip: int) -> Any:
    """Call an entry's rule with bound values (variadic parameters spread back out)."""
    positional, keywords = list(leading), {}
    params = parameters(fn, skip)
    variadic_at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
    for i, p in enumerate(params):
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            positional += list(values.get(p.name, ()))
        elif variadic_at is not None and i < variadic_at:
            positional.append(values[p.name])
        else:
            keywords[p.name] = values[p.name]
    return fn(*positional, **keywords)
