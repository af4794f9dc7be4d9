"""The documentation stays true: examples parse and check, tables match the registries, every
diagnostic code is documented.

- every ```gen block of docs/language.md parses (fragments are wrapped in `model Doc { ... }`);
- every block that defines a model and imports nothing passes the full checker for each model;
- the reference tables list exactly the registry entries, with their signatures and doc lines;
- every diagnostic code used in gendsl/ appears in docs/errors.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gendsl.diagnostics import has_errors
from gendsl.graph.check import check_source
from gendsl.graph.nodes import TrainConfig
from gendsl.library import training
from gendsl.library.distributions import DISTRIBUTIONS
from gendsl.library.functions import FUNCTIONS
from gendsl.library.entries import Configured
from gendsl.library.layers import LAYERS
from gendsl.library.methods import METHODS
from gendsl.library.sources import SOURCES
from gendsl.source import SourceFile
from gendsl.syntax.parse import parse_source

ROOT = Path(__file__).resolve().parents[2]
LANGUAGE = ROOT / "docs" / "language.md"
ERRORS = ROOT / "docs" / "errors.md"
TOP_LEVEL = ("model", "block", "import")


# ---- examples ----

def gen_blocks() -> list[tuple[int, str]]:
    """(line number, text) of every ```gen block of the language reference."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(LANGUAGE.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if current is None and stripped == "```gen":
            current, start = [], number + 1
        elif current is not None and stripped == "```":
            blocks.append((start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, f"unclosed ```gen block starting at line {start}"
    return blocks


def first_word(text: str) -> str:
    """The first word of a block, skipping blank and comment-only lines."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.split()[0]
    return ""


def is_fragment(text: str) -> bool:
    return first_word(text) not in TOP_LEVEL


def as_source(start: int, text: str) -> SourceFile:
    """A block as a file: fragments go inside `model Doc { ... }`."""
    if is_fragment(text):
        text = "model Doc {\n" + text + "}\n"
    return SourceFile(f"<docs/language.md:{start}>", text)


def describe(diagnostics) -> str:
    return "\n".join(f"{d.severity}[{d.code}] {d.span.line}:{d.span.col}: {d.message} ({d.hint})"
                     for d in diagnostics)


BLOCKS = gen_blocks()


def test_the_reference_has_examples():
    assert len(BLOCKS) >= 30
    assert sum(not is_fragment(text) and first_word(text) != "import" for _, text in BLOCKS) >= 10


@pytest.mark.parametrize("start,text", BLOCKS, ids=[f"line{s}" for s, _ in BLOCKS])
def test_example_parses(start, text):
    module, diagnostics = parse_source(as_source(start, text))
    assert module is not None and not diagnostics, describe(diagnostics)


def is_self_contained(start: int, text: str) -> bool:
    """A whole spec that defines a model and imports nothing (imports name files the docs lack)."""
    if is_fragment(text):
        return False
    module, _ = parse_source(as_source(start, text))
    return module is not None and not module.imports and bool(module.models)


COMPLETE = [(s, t) for s, t in BLOCKS if is_self_contained(s, t)]


@pytest.mark.parametrize("start,text", COMPLETE, ids=[f"line{s}" for s, _ in COMPLETE])
def test_complete_example_checks(start, text):
    source = as_source(start, text)
    module, _ = parse_source(source)
    for model in module.models:
        checked = check_source(source, model=model.name.name)
        assert not has_errors(checked.diagnostics), f"model {model.name.name}:\n" + describe(
            checked.diagnostics)


# ---- reference tables ----

def split_row(line: str) -> list[str]:
    """Cells of a markdown table row; `\\|` is a literal bar, backticks are dropped."""
    cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
    return [c[1:-1] if len(c) > 1 and c[0] == c[-1] == "`" and c.count("`") == 2 else c for c in cells]


def reference_sections() -> dict[str, list[list[str]]]:
    """'### Title' -> the rows (without header and rule) of its table, after '## Reference tables'."""
    text = LANGUAGE.read_text(encoding="utf-8")
    assert "## Reference tables" in text
    tables = text.split("## Reference tables", 1)[1]
    sections: dict[str, list[list[str]]] = {}
    title = None
    for line in tables.splitlines():
        if line.startswith("### "):
            title = line[4:].strip()
            sections[title] = []
        elif title and line.startswith("|"):
            sections[title].append(split_row(line))
    return {t: rows[2:] for t, rows in sections.items()}  # drop header and |---| rule


ACTIVATIONS = [e for e in LAYERS.values() if "activation" in e.tags]
ACTIVATION_NAMES = {e.name for e in ACTIVATIONS}


def expected_tables() -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """Section -> the rows it must have: (signatures in the row, doc line)."""
    def rows(entries):
        return [((e.signature,), e.doc) for e in entries]

    activations = []
    for e in ACTIVATIONS:
        function = FUNCTIONS.get(e.name)
        signatures = (e.signature, function.signature) if function else (e.signature,)
        activations.append((signatures, e.doc))
    return {
        "Activations": activations,
        "Layers": rows(e for e in LAYERS.values() if not e.tags),
        "Invertible layers": rows(e for e in LAYERS.values() if "invertible" in e.tags),
        "Functions": rows(e for e in FUNCTIONS.values() if e.name not in ACTIVATION_NAMES),
        "Distributions": rows(DISTRIBUTIONS.values()),
        "Data sources": rows(SOURCES.values()),
        "Optimizers": rows(training.OPTIMIZERS.values()),
        "Learning-rate schedules": rows(training.SCHEDULES.values()),
        "Samplers": rows(training.SAMPLERS.values()),
        "Diffusion processes": rows(training.PROCESSES.values()),
        "Noise schedules": rows(training.BETA_SCHEDULES.values()),
        "Tensor initializers": rows(training.INITS.values()),
        "Metrics": rows(training.METRICS.values()),
        "Methods": rows(METHODS.values()),
    }


def test_tables_cover_every_registry_entry():
    """Each registry is fully assigned to a section (so a new kind of entry cannot slip out)."""
    expected = expected_tables()
    listed = {sig for rows in expected.values() for sigs, _ in rows for sig in sigs}
    registries = [LAYERS, FUNCTIONS, DISTRIBUTIONS, SOURCES, training.OPTIMIZERS, training.SCHEDULES,
                  training.SAMPLERS, training.PROCESSES, training.BETA_SCHEDULES, training.INITS,
                  training.METRICS]
    missing = [f"{r.what} {e.name}" for r in registries for e in r.values() if e.signature not in listed]
    assert not missing, f"registry entries in no reference table: {missing}"
    strays = [n for n in FUNCTIONS if n in ACTIVATION_NAMES and FUNCTIONS[n].doc != LAYERS[n].doc]
    assert not strays, f"activation functions whose doc differs from the layer's: {strays}"


@pytest.mark.parametrize("section", list(expected_tables()))
def test_reference_table_matches_registry(section):
    rows = reference_sections().get(section)
    assert rows is not None, f"docs/language.md has no '### {section}' reference table"
    expected = expected_tables()[section]
    for signatures, doc in expected:
        found = [r for r in rows if all(s in r for s in signatures)]
        assert found, (f"'{section}' lacks a row for {signatures[0]}; regenerate the table from the "
                       f"registry (Entry.signature, Entry.doc)")
        assert found[0][-1] == doc, f"'{section}': the doc of {signatures[0]} is stale: {found[0][-1]!r}"
    assert len(rows) == len(expected), (f"'{section}' has {len(rows)} rows but the registry has "
                                        f"{len(expected)} entries: remove rows for deleted entries")


def setting_default(name: str) -> str:
    value = TrainConfig.model_fields[name].default
    if isinstance(value, Configured):
        options = ", ".join(f"{k}={v}" for k, v in value.options.items())
        return f"{value.entry}({options})"
    return "none" if value is None else str(value)


def test_train_settings_table():
    rows = {r[0]: r for r in reference_sections().get("Train settings", [])}
    assert set(rows) == set(training.SETTINGS), "the train settings table differs from SETTINGS"
    for name, setting in training.SETTINGS.items():
        _, value, default, doc = rows[name]
        assert value.split()[0] == setting.kind, f"setting {name}: kind {setting.kind}, doc says {value}"
        assert doc == setting.doc, f"setting {name}: stale doc {doc!r}"
        assert default == setting_default(name), f"setting {name}: default is {setting_default(name)}"


# ---- diagnostic codes ----

CODE = re.compile(r"""["']([EW]\d{3})["']""")


def codes_in_source() -> dict[str, str]:
    """Every diagnostic code written as a string literal in gendsl/, with one file using it."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "gendsl").rglob("*.py")):
        for code in CODE.findall(path.read_text(encoding="utf-8")):
            found.setdefault(code, str(path.relative_to(ROOT)))
    return found


def test_every_diagnostic_code_is_documented():
    documented = set(re.findall(r"^\|\s*`?([EW]\d{3})`?\s*\|", ERRORS.read_text(encoding="utf-8"),
                                flags=re.MULTILINE))
    used = codes_in_source()
    assert len(used) > 50
    missing = {code: where for code, where in used.items() if code not in documented}
    assert not missing, f"codes used in the source but not in a docs/errors.md table row: {missing}"
