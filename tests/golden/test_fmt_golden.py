"""Golden tests of `gendsl fmt`: each file of fmt/ (a spec, or Markdown with ```gen blocks) laid
out badly on purpose, and its canonical layout in NAME.expected.

`pytest tests/golden --update-golden` rewrites the expected files (review the diff).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gendsl.source import SourceFile
from gendsl.syntax.fmt import format_path
from tests.golden.test_golden import compare

HERE = Path(__file__).parent / "fmt"
CASES = sorted(p for p in HERE.iterdir() if p.suffix in (".gen", ".md"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fmt_golden(case: Path, update_golden: bool) -> None:
    source = SourceFile.read(case)
    result = format_path(source)
    assert result.text is not None, result.diagnostics
    assert result.changed, f"{case.name} should need formatting: it tests nothing otherwise"
    compare(case.with_name(case.name + ".expected"), result.text, update_golden)
    again = format_path(SourceFile(str(case), result.text))
    assert again.text == result.text, "formatting twice must change nothing"
