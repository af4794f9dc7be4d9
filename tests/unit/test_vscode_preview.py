"""editors/vscode/scripts/preview.js: a spec highlighted by the VS Code grammar as an HTML page,
each token a span coloured by its TextMate scope, the spec's text kept exactly."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREVIEW = ROOT / "editors" / "vscode" / "scripts" / "preview.js"
SPEC = ROOT / "specs" / "vae.gen"

pytestmark = pytest.mark.skipif(shutil.which("node") is None,
                                reason="node is not installed (scripts/setup.sh installs it)")


class Code(HTMLParser):
    """The text of <pre class="code"> and, per scope (a span's title), its tokens and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # open elements inside the <pre class="code">, 0 outside it
        self.text: list[str] = []
        self.open: list[tuple[str | None, str]] = []  # (title, style) of each open element
        self.spans: dict[str, list[tuple[str, str]]] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self.depth or (tag == "pre" and attrs.get("class") == "code"):
            self.depth += 1
            self.open.append((attrs.get("title") if tag == "span" else None, attrs.get("style", "")))

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1
            self.open.pop()

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)
            scope, style = self.open[-1]
            if scope:
                self.spans.setdefault(scope, []).append((data, style))


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("preview") / "vae.html"
    subprocess.run(["node", str(PREVIEW), str(SPEC), "-o", str(out)], check=True, capture_output=True,
                   text=True, timeout=60)
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def code(page: str) -> Code:
    parser = Code()
    parser.feed(page)
    return parser


def colour(style: str) -> str:
    match = re.search(r"color:(#[0-9a-f]{6})", style)
    assert match, f"no colour in {style!r}"
    return match.group(1)


def test_the_visible_code_is_the_spec_text(code: Code) -> None:
    assert "".join(code.text) == SPEC.read_text(encoding="utf-8")


def test_keywords_layers_and_comments_are_coloured_spans(code: Code) -> None:
    keyword = dict(code.spans["storage.type.declaration"])["model"]
    control = dict(code.spans["keyword.control"])["train"]
    layer = dict(code.spans["support.function.stage"])["Linear"]
    comment = code.spans["comment.line.number-sign"][0]
    assert comment[0].startswith("# Variational autoencoder")
    colours = {colour(style) for style in (keyword, control, layer, comment[1])}
    assert len(colours) == 4, "keywords, train keywords, layers and comments share a colour"
    assert colour(dict(code.spans["entity.name.function.call"])["Normal"]) not in colours


def test_the_legend_lists_the_scopes_used(page: str, code: Code) -> None:
    legend = page[page.index('<aside class="legend">'):]
    for scope in code.spans:
        assert f">{scope}</span>" in legend
