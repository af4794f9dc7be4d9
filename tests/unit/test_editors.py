"""Editor support outside the language server: the VS Code grammar and package, and the Pygments
lexer. Both must know every keyword of the language's grammar (grammars/gen.lark)."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from pygments.lexers import get_lexer_by_name
from pygments.token import Error, Keyword

from gendsl.syntax.highlight import DECLARATIONS, KEYWORDS, NETWORKS, TYPES, GenLexer

ROOT = Path(__file__).resolve().parents[2]
EDITOR = ROOT / "editors" / "vscode"
SPECS = sorted((ROOT / "specs").glob("*.gen"))


def grammar_keywords() -> set[str]:
    """The words that gen.lark spells out as literals (`"model"`, `"minimize"`, ...)."""
    return set(re.findall(r'"([a-z_]+)"', (ROOT / "grammars" / "gen.lark").read_text(encoding="utf-8")))


def textmate_words() -> set[str]:
    """Every word of a group `\\b(a|b|c)` in the VS Code grammar's patterns."""
    def patterns(node):
        if isinstance(node, dict):
            yield from (v for k, v in node.items() if k in ("match", "begin"))
            for value in node.values():
                yield from patterns(value)
        elif isinstance(node, list):
            for value in node:
                yield from patterns(value)

    grammar = json.loads((EDITOR / "syntaxes" / "gen.tmLanguage.json").read_text(encoding="utf-8"))
    groups = [g for pattern in patterns(grammar) for g in re.findall(r"\\b\(((?:[a-z_]+\|)*[a-z_]+)\)", pattern)]
    return {word for group in groups for word in group.split("|")}


def test_the_vscode_grammar_knows_every_keyword() -> None:
    assert grammar_keywords() - textmate_words() == set()


def test_the_pygments_lexer_knows_every_keyword() -> None:
    assert grammar_keywords() - set(DECLARATIONS + NETWORKS + KEYWORDS + TYPES) == set()


def test_pygments_finds_the_lexer_by_its_plugin_name() -> None:
    assert isinstance(get_lexer_by_name("gen"), GenLexer)


def doc_examples() -> list[str]:
    blocks = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks += re.findall(r"```gen\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    return blocks


@pytest.mark.parametrize("text", [p.read_text(encoding="utf-8") for p in SPECS] + doc_examples())
def test_pygments_highlights_specs_and_doc_examples_without_errors(text: str) -> None:
    tokens = list(GenLexer().get_tokens(text))
    ending = "" if text.endswith("\n") else "\n"  # Pygments ends its last line
    assert "".join(value for _, value in tokens) == text + ending
    assert not [value for kind, value in tokens if kind in Error]
    assert any(kind in Keyword for kind, _ in tokens)


def test_the_vscode_extension_packages(tmp_path: Path) -> None:
    """The .vsix builds from the committed files and carries the grammar and the LSP client."""
    vsix = tmp_path / "gendsl.vsix"
    subprocess.run(["npx", "--no-install", "vsce", "package", "--allow-missing-repository", "-o", str(vsix)],
                   cwd=EDITOR, check=True, capture_output=True, text=True)
    names = set(zipfile.ZipFile(vsix).namelist())
    for wanted in ("extension/package.json", "extension/extension.js", "extension/syntaxes/gen.tmLanguage.json",
                   "extension/language-configuration.json",
                   "extension/node_modules/vscode-languageclient/package.json"):
        assert wanted in names
