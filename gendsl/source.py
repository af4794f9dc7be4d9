"""Source files and spans: where every AST node, graph node and diagnostic points."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class Span(BaseModel):
    """A range of text in one file: 1-based lines and columns, end column exclusive."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def merge(self, other: "Span") -> "Span":
        """The smallest span covering both (same file)."""
        start = min((self.line, self.col), (other.line, other.col))
        end = max((self.end_line, self.end_col), (other.end_line, other.end_col))
        return Span(file=self.file, line=start[0], col=start[1], end_line=end[0], end_col=end[1])

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span(file="<command line>", line=0, col=0, end_line=0, end_col=0)


class SourceFile:
    """The text of one spec file, split into lines for caret rendering."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self.lines = [line.rstrip("\r") for line in text.split("\n")]  # Lark counts lines by \n only

    @classmethod
    def read(cls, path: str | Path) -> "SourceFile":
        """Read a spec from disk (UTF-8); errors are the caller's to turn into diagnostics."""
        return cls(str(path), Path(path).read_text(encoding="utf-8"))

    def line(self, number: int) -> str:
        """The text of a 1-based line, or '' past the end."""
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""
