"""`gendsl lsp` driven as an editor drives it: JSON-RPC over the server's stdio in a subprocess
(initialize, didOpen, didChange, hover, completion, definition, formatting, documentSymbol).

What it answers is compared with what the front end itself says: `check_source` for the
diagnostics, the registries for signatures and doc lines, `summarize` for parameter counts,
`format_source` for formatting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gendsl.graph.check import check_file, check_source
from gendsl.library.distributions import DISTRIBUTIONS
from gendsl.library.functions import FUNCTIONS
from gendsl.library.layers import LAYERS
from gendsl.library.sources import SOURCES
from gendsl.source import SourceFile
from gendsl.summary import summarize
from gendsl.syntax.fmt import format_source
from gendsl.syntax.parse import keywords
from tests.e2e.lsp_client import ROOT, Client

VAE = ROOT / "specs" / "vae.gen"


@pytest.fixture(scope="module")
def client():
    client = Client()
    result = client.request("initialize", {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}})
    client.capabilities = result["capabilities"]
    client.notify("initialized", {})
    yield client
    assert client.close() == 0


def open_document(client: Client, path: Path, text: str | None = None) -> tuple[str, list[dict]]:
    uri = path.as_uri()
    text = path.read_text() if text is None else text
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "gen", "version": 1,
                                                            "text": text}})
    return uri, client.diagnostics(uri)


def position(text: str, needle: str, offset: int = 0) -> dict:
    """The LSP position of the first `needle` (plus offset characters) in the text."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return {"line": line, "character": index - (text.rfind("\n", 0, index) + 1)}


def at(uri: str, text: str, needle: str, offset: int = 0) -> dict:
    return {"textDocument": {"uri": uri}, "position": position(text, needle, offset)}


def test_server_says_what_it_provides(client) -> None:
    caps = client.capabilities
    for provider in ("hoverProvider", "definitionProvider", "documentFormattingProvider",
                     "documentSymbolProvider", "completionProvider"):
        assert caps.get(provider), provider


def test_diagnostics_as_you_type_match_check(client) -> None:
    text = VAE.read_text()
    uri, diagnostics = open_document(client, VAE)
    assert diagnostics == []
    broken = text.replace("|> Linear(latent) |> exp", "|> Linaer(latent) |> exp").replace(
        "beta * kl", "betta * kl")
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": broken}]})
    shown = client.diagnostics(uri)
    expected = check_source(SourceFile(str(VAE.resolve()), broken)).diagnostics
    assert len(expected) >= 2 and len(shown) == len(expected)
    for got, want in zip(shown, expected):
        assert got["code"] == want.code and got["source"] == "gendsl"
        assert got["range"]["start"] == {"line": want.span.line - 1, "character": want.span.col - 1}
        assert got["range"]["end"] == {"line": want.span.end_line - 1, "character": want.span.end_col - 1}
        assert got["message"].startswith(want.message)
        assert f"help: {want.hint}" in got["message"]
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3},
                                             "contentChanges": [{"text": text}]})
    assert client.diagnostics(uri) == []


def test_syntax_errors_and_notes_come_through(client, tmp_path: Path) -> None:
    spec = tmp_path / "twice.gen"
    text = "model A {\n  param k: int = 1\n  param k: int = 2\n}\n"
    uri, shown = open_document(client, spec, text)
    [want] = check_source(SourceFile(str(spec.resolve()), text)).diagnostics
    [got] = shown
    assert got["code"] == want.code == "E101"
    assert got["relatedInformation"][0]["message"] == want.notes[0].message
    assert got["relatedInformation"][0]["location"]["range"]["start"]["line"] == want.notes[0].span.line - 1
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": "model A {\n  param = 1\n}\n"}]})
    [syntax] = client.diagnostics(uri)
    assert syntax["code"].startswith("E0") and syntax["range"]["start"]["line"] == 1


def test_hover_shows_types_signatures_and_docs(client) -> None:
    text = VAE.read_text()
    uri, _ = open_document(client, VAE)
    local = client.request("textDocument/hover", at(uri, text, "h = x"))["contents"]["value"]
    assert "h: real[200]" in local
    latent = client.request("textDocument/hover", at(uri, text, "latent z", 7))["contents"]["value"]
    assert "latent z: real[50] ~ Normal" in latent
    summary = summarize(check_file(VAE).graph)
    encoder = next(n for n in summary["networks"] if n["name"] == "q(z | x)")
    net = client.request("textDocument/hover", at(uri, text, "q(z | x) {"))["contents"]["value"]
    assert f"encoder q(z | x)({encoder['inputs']}) -> {encoder['output']}: {encoder['params']:,} parameters" in net
    layer = client.request("textDocument/hover", at(uri, text, "Linear(hidden)", 2))["contents"]["value"]
    assert LAYERS["Linear"].signature in layer and LAYERS["Linear"].doc in layer
    dist = client.request("textDocument/hover", at(uri, text, "Bernoulli"))["contents"]["value"]
    assert DISTRIBUTIONS["Bernoulli"].doc in dist
    assert client.request("textDocument/hover", at(uri, text, "model VAE", 2)) is None
    # the keyword `latent`, not the param named latent
    assert client.request("textDocument/hover", at(uri, text, "latent z", 2)) is None
    param = client.request("textDocument/hover", at(uri, text, "real[latent]", 6))["contents"]["value"]
    assert "param latent: int = 50" in param


def test_go_to_definition(client) -> None:
    text = VAE.read_text()
    uri, _ = open_document(client, VAE)
    [param] = client.request("textDocument/definition", at(uri, text, "beta * kl"))
    assert param["uri"] == uri and param["range"]["start"] == position(text, "beta: float")
    [local] = client.request("textDocument/definition", at(uri, text, "h |> Linear(latent)"))
    assert local["range"]["start"] == position(text, "h = x")
    # a model that extends another: its names are declared in the imported file
    child = ROOT / "specs" / "beta_vae.gen"
    child_text = child.read_text()
    child_uri, diagnostics = open_document(client, child)
    assert diagnostics == []
    [own] = client.request("textDocument/definition", at(child_uri, child_text, "beta: float"))
    assert own["uri"] == child_uri
    text_child = child_text + "  # z\n"
    client.notify("textDocument/didChange", {"textDocument": {"uri": child_uri, "version": 2},
                                             "contentChanges": [{"text": text_child}]})
    client.diagnostics(child_uri)
    [inherited] = client.request("textDocument/definition", at(child_uri, text_child, "# z", 2))
    assert inherited["uri"] == VAE.resolve().as_uri()
    assert inherited["range"]["start"] == position(text, "z: real[latent]")


def test_completion_offers_names_library_and_keywords(client) -> None:
    text = VAE.read_text()
    uri, _ = open_document(client, VAE)
    items = client.request("textDocument/completion", at(uri, text, "z ~ Normal(loc"))["items"]
    by_label: dict[str, list[dict]] = {}
    for item in items:
        by_label.setdefault(item["label"], []).append(item)
    assert any(i.get("detail") == "h: real[200]" for i in by_label["h"])  # a local of the encoder
    assert any(i.get("detail") == "param hidden: int = 200" for i in by_label["hidden"])
    for registry, name in ((LAYERS, "Conv2d"), (DISTRIBUTIONS, "Normal"), (FUNCTIONS, "mse"),
                           (SOURCES, "binarized_mnist")):
        assert any(i.get("detail") == registry[name].signature for i in by_label[name]), name
    assert set(keywords()) <= set(by_label)
    assert "kl" in by_label  # the checker's built-in call
    # the decoder does not see the encoder's local h
    elsewhere = client.request("textDocument/completion", at(uri, text, "x ~ Bernoulli"))["items"]
    assert not any(i["label"] == "h" for i in elsewhere)


def test_formatting_is_fmt(client, tmp_path: Path) -> None:
    spec = tmp_path / "messy.gen"
    text = "model A{\nparam k:int=3\n  data x:real[2]from ring()\n}\n"
    uri, _ = open_document(client, spec, text)
    [edit] = client.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                        "options": {"tabSize": 2, "insertSpaces": True}})
    assert edit["newText"] == format_source(SourceFile(str(spec), text)).text
    assert edit["range"]["start"] == {"line": 0, "character": 0}
    assert edit["range"]["end"] == {"line": 4, "character": 0}
    canonical = edit["newText"]
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": canonical}]})
    assert client.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                      "options": {"tabSize": 2, "insertSpaces": True}}) == []


def test_document_symbols(client) -> None:
    uri, _ = open_document(client, VAE)
    [model] = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    assert model["name"] == "VAE"
    names = [c["name"] for c in model["children"]]
    assert names[:5] == ["latent", "hidden", "beta", "x", "z"]
    assert "q(z | x)" in names and "p(x | z)" in names and "elbo" in names and "train" in names


def test_an_unsaved_buffer_is_checked_too(client) -> None:
    uri = "untitled:Untitled-1"
    text = "model A {\n  data x: real[2] from ring()\n  loss l = mse(x, y)\n}\n"
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "gen", "version": 1,
                                                            "text": text}})
    shown = client.diagnostics(uri)
    assert [d["code"] for d in shown] == [d.code for d in check_source(SourceFile(uri, text)).diagnostics]
    unknown = next(d for d in shown if d["code"] == "E102")
    assert unknown["range"]["start"] == position(text, "y)") and unknown["severity"] == 1


HIERARCHICAL = """\
model Deep {
  data x: bin[64] from digits(binarize=true)
  latent z2: real[2] ~ Normal(0, 1)
  latent z1: real[4] ~ p(z1 | z2)
  decoder p(z1 | z2) { z1 ~ Normal(loc = z2 |> Linear(4), scale = z2 |> Linear(4) |> exp) }
  decoder p(x | z1) { x ~ Bernoulli(logits = z1 |> Linear(64)) }
  encoder q(z1 | x) { z1 ~ Normal(loc = x |> Linear(4), scale = x |> Linear(4) |> exp) }
  encoder q(z2 | z1) { z2 ~ Normal(loc = z1 |> Linear(2), scale = z1 |> Linear(2) |> exp) }
  loss elbo = -(log p(x | z1) + log p(z1 | z2) + log p(z2) - log q(z1 | x) - log q(z2 | z1))
  train { minimize elbo; batch 8; steps 1 }
}
"""


def test_a_density_name_means_the_factor_of_its_variables(client, tmp_path: Path) -> None:
    spec = tmp_path / "deep.gen"
    text = HIERARCHICAL
    expected = check_source(SourceFile(str(spec.resolve()), text))
    uri, shown = open_document(client, spec, text)
    assert [d["code"] for d in shown] == [d.code for d in expected.diagnostics]
    assert expected.ok, shown
    upper = client.request("textDocument/hover", at(uri, text, "p(z1 | z2) + log"))["contents"]["value"]
    assert "decoder p(z1 | z2)" in upper and "p(x | z1)" not in upper
    [lower] = client.request("textDocument/definition", at(uri, text, "p(x | z1) + log"))
    assert lower["range"]["start"] == position(text, "p(x | z1) {")


def test_problems_of_an_imported_file_show_on_its_import(client, tmp_path: Path) -> None:
    (tmp_path / "parent.gen").write_text("model Parent {\n  data x: real[2] from ring()\n  loss l = mse(x, nope)\n}\n")
    child = tmp_path / "child.gen"
    text = 'import "parent.gen"\n\nmodel Child extends Parent {\n  param k: int = 1\n}\n'
    uri, shown = open_document(client, child, text)
    expected = check_source(SourceFile(str(child.resolve()), text)).diagnostics
    unknown = next(d for d in shown if d["code"] == "E102")
    assert any(d.code == "E102" for d in expected)
    assert unknown["range"]["start"] == {"line": 0, "character": 0}
    assert unknown["range"]["end"] == {"line": 0, "character": len('import "parent.gen"')}
    assert "parent.gen:3:" in unknown["message"]


def test_plugins_of_the_project_count_as_in_check(client, tmp_path: Path) -> None:
    """A project whose pyproject.toml names a plugin: the server checks with it, as `gendsl check`
    does, and offers its entries."""
    plugins = ROOT / "examples" / "plugins"
    for name in ("gated.py", "gated_torch.py", "gated_vae.gen"):
        (tmp_path / name).write_text((plugins / name).read_text())
    spec = tmp_path / "gated_vae.gen"
    text = spec.read_text()
    uri, shown = open_document(client, spec, text)
    without = check_source(SourceFile(str(spec.resolve()), text)).diagnostics  # no plugin configured yet
    assert shown and [d["code"] for d in shown] == [d.code for d in without]
    (tmp_path / "pyproject.toml").write_text('[tool.gendsl]\nplugins = ["gated.py"]\n')
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": text}]})
    assert client.diagnostics(uri) == []
    layer = client.request("textDocument/hover", at(uri, text, "GatedLinear"))["contents"]["value"]
    assert "gated linear unit" in layer
    items = client.request("textDocument/completion", at(uri, text, "h = snake"))["items"]
    assert any(i["label"] == "GatedLinear" for i in items)
