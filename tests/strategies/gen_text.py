"""Writing values in the .gen language: option literals, tensor types."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from gendsl.types import TensorType


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
