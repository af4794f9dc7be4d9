"""Pass 2: give every param its value: its default, or a `--set NAME=VALUE` override.

Params may use earlier params (`param wide: int = 2 * hidden`); overrides are parsed here so
that bad `--set` values are diagnostics like any other.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from gendsl import ast
from gendsl.diagnostics import Diagnostic, Note, did_you_mean, error
from gendsl.graph.constants import evaluate_or_report
from gendsl.source import NO_SPAN

PARAM_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def parse_override(text: str) -> tuple[str, str] | None:
    """`beta=4` -> ('beta', '4'); None when there is no '='."""
    name, sep, value = text.partition("=")
    return (name.strip(), value.strip()) if sep and name.strip() else None


def convert(raw: str, type_name: str) -> tuple[bool, Any]:
    """A command-line string as a value of the param's type."""
    try:
        if type_name == "int":
            return True, int(raw)
        if type_name == "float":
            return True, float(raw)
        if type_name == "bool":
            lowered = raw.lower()
            if lowered in ("true", "false"):
                return True, lowered == "true"
            return False, None
        return True, raw
    except ValueError:
        return False, None


def check_value(value: Any, type_name: str) -> tuple[bool, Any]:
    """A default's value against the declared type (ints widen to float); finite and below 10^15."""
    import math

    if isinstance(value, (int, float)) and not isinstance(value, bool) and \
            (not math.isfinite(value) or abs(value) > 10 ** 15):
        return False, value
    python_type = PARAM_TYPES[type_name]
    if python_type is float and isinstance(value, int) and not isinstance(value, bool):
        return True, float(value)
    if python_type is int and isinstance(value, float) and value.is_integer():
        return False, value
    return isinstance(value, python_type) and not (python_type is int and isinstance(value, bool)), value


def resolve_params(graph: nx.DiGraph, overrides: list[str] = ()) -> tuple[nx.DiGraph, list[Diagnostic], bool]:
    """Evaluate params in declaration order and apply overrides. The flag says whether every
    param has a value and every override applied: types built from anything else would mislead."""
    graph = graph.copy()
    diagnostics: list[Diagnostic] = []
    params = {key: data["data"] for key, data in graph.nodes(data=True) if data["data"].kind == "param"}
    wanted = _parse_overrides(overrides, params, diagnostics)
    overrides_ok = not diagnostics
    values: dict[str, Any] = {}
    for key, node in params.items():
        decl: ast.ParamDecl = node.decl
        if node.type_name not in PARAM_TYPES:
            diagnostics.append(error("E201", f"unknown param type '{node.type_name}'", decl.type_name.span,
                                     hint=did_you_mean(node.type_name, PARAM_TYPES) or "use int, float, bool or str"))
            continue
        ok, value = evaluate_or_report(decl.default, values, diagnostics, f"the default of '{key}'",
                                       symbols=False)
        if not ok:
            continue
        if ok:
            ok, value = check_value(value, node.type_name)
            if not ok:
                diagnostics.append(error("E202", f"param '{key}' is declared {node.type_name} but its "
                                         f"default is {value!r}", decl.default.span,
                                         label=f"not {node.type_name}",
                                         hint=f"change the default or declare `{key}: {_type_of(value)}`"))
                continue
        overridden = key in wanted
        if overridden:
            converted, override = convert(wanted[key], node.type_name)
            converted = converted and check_value(override, node.type_name)[0]
            if not converted:
                diagnostics.append(error("E121", f"--set {key}={wanted[key][:40]}: '{key}' is {node.type_name}"
                                         f"{'' if node.type_name == 'str' else ' (finite, below 10^15)'}",
                                         decl.span, label=f"'{key}' declared {node.type_name} here",
                                         hint=f"give {'an' if node.type_name == 'int' else 'a'} {node.type_name}, e.g. --set {key}={_example(node.type_name)}"))
                continue
            value = override
        values[key] = value
        graph.nodes[key]["data"] = node.annotate(value=value, overridden=overridden)
    graph.graph["params"] = values
    graph.graph["overridden"] = set(wanted)
    return graph, diagnostics, overrides_ok and len(values) == len(params)


def _parse_overrides(overrides: list[str], params: dict, diagnostics: list[Diagnostic]) -> dict[str, str]:
    wanted: dict[str, str] = {}
    for text in overrides:
        parsed = parse_override(text)
        if parsed is None:
            diagnostics.append(error("E122", f"--set expects NAME=VALUE, got '{text}'", NO_SPAN,
                                     hint="for example --set beta=4"))
            continue
        name, raw = parsed
        if name not in params:
            notes = [Note(message=f"params of this model: {', '.join(params) or 'none'}")]
            diagnostics.append(error("E120", f"--set {name}: this model has no param '{name}'", NO_SPAN,
                                     hint=did_you_mean(name, params) or "declare it with `param`",
                                     notes=notes))
            continue
        wanted[name] = raw
    return wanted


def _type_of(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(type(value), type(value).__name__)


def _example(type_name: str) -> str:
    return {"int": "4", "float": "0.5", "bool": "true", "str": "name"}[type_name]
