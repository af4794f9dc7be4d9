"""Diagnostics are data: every error a user can cause is one of these, rendered only by the CLI.

Codes: E0xx syntax, E1xx names, E2xx types and shapes, E3xx roles and gradients,
E4xx data and run time, E5xx command line and files. Warnings use W with the same ranges.
"""

from __future__ import annotations

import difflib
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict

from gendsl.source import NO_SPAN, Span


class Note(BaseModel):
    """A secondary message, optionally pointing at another place in the source."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    message: str
    span: Span | None = None


class Diagnostic(BaseModel):
    """One error or warning: code, where, what was expected and found, and how to fix it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    code: str
    message: str
    span: Span = NO_SPAN
    label: str = ""
    notes: tuple[Note, ...] = ()
    hint: str = ""
    severity: Literal["error", "warning"] = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


class GendslError(Exception):
    """Raised to abort a stage with diagnostics already collected (e.g. run-time data errors)."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic]):
        self.diagnostics = [diagnostics] if isinstance(diagnostics, Diagnostic) else list(diagnostics)
        super().__init__("; ".join(f"{d.code}: {d.message}" for d in self.diagnostics))


def error(code: str, message: str, span: Span = NO_SPAN, *, label: str = "", hint: str = "",
          notes: Iterable[Note] = ()) -> Diagnostic:
    """Shorthand for an error diagnostic."""
    return Diagnostic(code=code, message=message, span=span, label=label, hint=hint, notes=tuple(notes))


def warning(code: str, message: str, span: Span = NO_SPAN, *, label: str = "", hint: str = "",
            notes: Iterable[Note] = ()) -> Diagnostic:
    """Shorthand for a warning diagnostic."""
    return Diagnostic(code=code, message=message, span=span, label=label, hint=hint,
                      notes=tuple(notes), severity="warning")


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A 'did you mean ...?' hint for a misspelt name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"did you mean '{close[0]}'?" if close else ""


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """True when any diagnostic is an error (warnings do not stop a run)."""
    return any(d.is_error for d in diagnostics)
