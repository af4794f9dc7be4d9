"""`gendsl fmt`: the layout keeps what a spec means and every comment, is idempotent, is one
layout (any respacing of a spec formats to the same text), and the specs are already in it.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from gendsl.cli import main
from gendsl.source import SourceFile
from gendsl.syntax import fmt
from gendsl.syntax.fmt import FormatterBug, ast_shape, format_markdown, format_path, format_source
from gendsl.syntax.layout import split_lines
from gendsl.syntax.parse import parse_source

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.gen")) + sorted((ROOT / "tests" / "specs").glob("*.gen"))
MARKDOWN = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"] + sorted((ROOT / "examples").glob("*.md"))


def comments(text: str) -> list[str]:
    return [line.comment for line in split_lines(text) if line.comment]


def gen_blocks(text: str) -> list[str]:
    return re.findall(r"^```gen\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_spec_keeps_meaning_and_comments(path: Path) -> None:
    source = SourceFile.read(path)
    formatted = format_source(source)
    before, _ = parse_source(source)
    after, _ = parse_source(SourceFile(str(path), formatted.text))
    assert ast_shape(after) == ast_shape(before)
    assert comments(formatted.text) == comments(source.text)
    assert format_source(SourceFile(str(path), formatted.text)).text == formatted.text


def test_specs_are_canonical(capsys) -> None:
    """The acceptance check: `gendsl fmt --check specs/*.gen` passes."""
    code = main(["fmt", "--check", *map(str, sorted((ROOT / "specs").glob("*.gen")))])
    assert code == 0, capsys.readouterr().err


def respaced(text: str, rng: random.Random) -> str:
    """The same tokens with other spaces: indents, gaps (never joining two tokens), blank lines."""
    out = []
    for line in split_lines(text):
        if line.blank:
            out.append("\n" * rng.randint(1, 3))
            continue
        parts, end = [" " * rng.randint(0, 6)], None
        for tok in line.tokens:
            if end is not None:
                touching = end == tok.start
                parts.append(" " * (rng.randint(0, 1) if touching else rng.randint(1, 3)))
            parts.append(tok.text)
            end = tok.start + len(tok.text)
        if line.comment:
            parts.append(" " * rng.randint(1 if line.tokens else 0, 9) + line.comment)
        out.append("".join(parts) + "\n")
    return "".join(out)


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_one_layout_whatever_the_spacing(path: Path) -> None:
    canonical = format_source(SourceFile.read(path)).text
    rng = random.Random(path.name)
    for _ in range(5):
        messy = respaced(canonical, rng)
        assert format_source(SourceFile(str(path), messy)).text == canonical, messy


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_doc_examples_format_keeping_meaning_and_comments(path: Path) -> None:
    source = SourceFile.read(path)
    formatted = format_markdown(source)
    assert formatted.text is not None, formatted.diagnostics
    before, after = gen_blocks(source.text), gen_blocks(formatted.text)
    assert len(before) == len(after)
    for old, new in zip(before, after):
        assert comments(new) == comments(old)
    assert format_markdown(SourceFile(str(path), formatted.text)).text == formatted.text
    outside = re.sub(r"^```gen\n.*?^```", "", source.text, flags=re.S | re.M)
    assert re.sub(r"^```gen\n.*?^```", "", formatted.text, flags=re.S | re.M) == outside


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_doc_examples_are_canonical(path: Path, capsys) -> None:
    """Every ```gen example of the docs is laid out as `gendsl fmt` would (fix: gendsl fmt FILE.md)."""
    assert main(["fmt", "--check", str(path)]) == 0, capsys.readouterr().err


def test_fmt_rewrites_checks_and_diffs(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "a.gen"
    messy = "model A {\nparam k:int=3\n}\n"
    spec.write_text(messy)
    assert main(["fmt", "--check", str(spec)]) == 1
    assert "would reformat" in capsys.readouterr().err
    assert main(["fmt", "--diff", str(spec)]) == 0
    assert "+  param k: int = 3" in capsys.readouterr().out
    assert spec.read_text() == messy  # --check and --diff write nothing
    assert main(["fmt", str(spec)]) == 0
    assert spec.read_text() == "model A {\n  param k: int = 3\n}\n"
    assert main(["fmt", "--check", str(spec)]) == 0


def test_fmt_leaves_a_broken_file_alone(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "bad.gen"
    spec.write_text("model A {\n  loss = = 1\n}\n")
    assert main(["fmt", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "error[E0" in err and "Traceback" not in err
    assert spec.read_text() == "model A {\n  loss = = 1\n}\n"
    assert main(["fmt", str(tmp_path / "missing.gen")]) == 1
    assert "E501" in capsys.readouterr().err


def test_a_layout_that_changed_the_meaning_is_refused(monkeypatch, tmp_path: Path, capsys) -> None:
    """The formatter re-parses its output: a bug that changed the AST stops it before writing."""
    source = SourceFile("a.gen", "model A {\n  loss l = 1 - 2\n}\n")
    monkeypatch.setattr(fmt, "layout", lambda text, roles, column=0: text.replace("1 - 2", "1 + 2"))
    with pytest.raises(FormatterBug):
        format_source(source)
    spec = tmp_path / "a.gen"
    spec.write_text(source.text)
    assert main(["fmt", str(spec)]) == 70  # an internal error, reported as E999
    assert "E999" in capsys.readouterr().err
    assert spec.read_text() == source.text


def test_markdown_leaves_other_text_and_fences_alone() -> None:
    text = "Intro  text.\n\n```python\nx=1\n```\n\n```gen\nparam k:int=3\n```\n"
    formatted = format_path(SourceFile("x.md", text))
    assert formatted.text == "Intro  text.\n\n```python\nx=1\n```\n\n```gen\nparam k: int = 3\n```\n"


def test_generated_specs_keep_their_meaning() -> None:
    """Specs of the property tests' generator (and mutated reference specs), formatted: same AST
    (format_source re-parses and compares), comments kept, one layout whatever the spacing."""
    from tests.strategies.generator import generate, seeded
    from tests.strategies.mutations import mutate

    rng = random.Random(0)
    for seed in range(25):
        for make in (generate, mutate):
            text = seeded(make, seed).text
            formatted = format_source(SourceFile("case.gen", text)).text
            assert formatted is not None and comments(formatted) == comments(text)
            assert format_source(SourceFile("case.gen", respaced(formatted, rng))).text == formatted, text


def test_fmt_and_lsp_do_not_import_torch() -> None:
    """Formatting every spec and building the language server's answers stay in the front end."""
    probe = (
        "import sys, glob\n"
        "from gendsl.cli import main\n"
        "import gendsl.lsp.server, gendsl.lsp.features\n"
        "from gendsl.graph.check import check_file\n"
        "from gendsl.lsp.index import build_index, library\n"
        "specs = sorted(glob.glob('specs/*.gen'))\n"
        "assert main(['fmt', '--check', *specs]) in (0, 1)\n"
        "[build_index(check_file(s)) for s in specs]; library()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n")
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_fmt_reads_stdin_and_writes_stdout(monkeypatch, capsys) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("model A {\nparam k:int=3\n}\n"))
    assert main(["fmt", "-"]) == 0
    assert capsys.readouterr().out == "model A {\n  param k: int = 3\n}\n"
