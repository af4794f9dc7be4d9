"""What a plugin's code may be (see gendsl/plugins.py): its rule module stays torch-free, its
implementation file can be copied into generated files, and its rules' results call only what
generated files have. Every fault is a diagnostic pointing into the plugin's files."""

from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import string
import traceback
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from gendsl.diagnostics import Diagnostic, GendslError, Note, error
from gendsl.source import SourceFile, Span

if TYPE_CHECKING:
    from gendsl.plugins import Plugin

GENERATED_IMPORTS = {"math": "math", "torch": "torch", "torch.nn": "nn", "torch.nn.functional": "F",
                     "torch.distributions": "D"}   # what every generated file imports, and as what
RESERVED = {"build", "SPEC", *GENERATED_IMPORTS.values()}   # other names a generated file defines


# ---- reading plugin files ----

def read_text(path: Path, what: str) -> str:
    """A plugin file's text; a missing or unreadable one is E520."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GendslError(error("E520", f"no such {what} file: {path}",
                                hint="check the path given to --plugin (relative to the working folder)")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GendslError(error("E520", f"cannot read {what} file {path}: {exc}",
                                hint=f"a {what} is a UTF-8 Python file")) from None


def parse_python(path: Path, text: str, code: str) -> ast.Module:
    """A plugin file's syntax tree; a syntax error is a diagnostic with the given code."""
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise with_source(error(code, f"{path.name} is not valid Python: {exc.msg}",
                                span_at(path, text, exc.lineno or 1, exc.offset or 1),
                                hint="fix the syntax error"), path, text) from None


def refuse_torch(path: Path, text: str, tree: ast.Module) -> None:
    """The rule module runs in `gendsl check`, which never imports torch (nor may a plugin)."""
    for node in ast.walk(tree):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if any(m.split(".")[0] == "torch" for m in modules):
            raise with_source(error("E521", f"plugin {path.name} imports torch in its rule module",
                                    span_at(path, text, node.lineno, node.col_offset + 1),
                                    hint="rules only compute types and code text; put the PyTorch classes in "
                                         "the plugin's IMPLEMENTATION file"), path, text)


def rule_line(rule: Callable, path: Path) -> int:
    """The line where a rule is defined in the plugin (its first decorator's), else 1."""
    code = getattr(rule, "__code__", None)
    return code.co_firstlineno if code is not None and same_file(code.co_filename, path) else 1


def same_file(filename: str, path: Path) -> bool:
    """Does a traceback's file name name this path?"""
    with contextlib.suppress(OSError):
        return Path(filename).resolve() == path.resolve()
    return False


# ---- the implementation file ----

def read_implementation(path: Path, text: str, tree: ast.Module, module) -> tuple[Path | None, str, tuple[str, ...]]:
    """The implementation file the rule module names (`IMPLEMENTATION = "x.py"`), checked to be
    copyable: imports only what generated files import, then classes and functions."""
    named = getattr(module, "IMPLEMENTATION", None)
    if named is None:
        return None, "", ()
    line = next((n.lineno for n in tree.body if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "IMPLEMENTATION" for t in n.targets)), 1)
    if not isinstance(named, str) or not named.endswith(".py"):
        raise with_source(error("E525", f"plugin {path.name}: IMPLEMENTATION must name a .py file",
                                span_at(path, text, line), hint='e.g. IMPLEMENTATION = "mylayers_torch.py"'),
                          path, text)
    impl = path.parent / named
    if not impl.is_file():
        raise with_source(error("E525", f"plugin {path.name}: its IMPLEMENTATION file {impl} does not exist",
                                span_at(path, text, line), hint="the path is relative to the plugin's folder"),
                          path, text)
    impl_text = read_text(impl, "plugin implementation")
    definitions = []
    builtin = builtin_helper_names()
    for node in parse_python(impl, impl_text, "E525").body:
        definitions += _definition(impl, impl_text, node, builtin)
    return impl, impl_text, tuple(definitions)


def _definition(impl: Path, text: str, node: ast.stmt, builtin: set[str]) -> list[str]:
    """The name a top-level statement of an implementation file defines; refuses what generated
    files would not have (other imports, module-level state, a name gendsl already uses)."""
    where = span_at(impl, text, node.lineno, node.col_offset + 1)
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        imported = [(a.name, a.asname or a.name) for a in node.names] if isinstance(node, ast.Import) else \
            [(f"{node.module}.{a.name}", a.asname or a.name) for a in node.names]
        for module, alias in imported:
            if _is_future(node) or GENERATED_IMPORTS.get(module) == alias:
                continue
            raise with_source(error("E525", f"{impl.name} imports {module} as {alias}, which generated files "
                                    "do not have", where, hint="generated files import only math, torch, torch.nn "
                                    "as nn, torch.nn.functional as F and torch.distributions as D"), impl, text)
        return []
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # a docstring
        return []
    if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
        raise with_source(error("E525", f"{impl.name}: only classes and functions are copied into generated "
                                "files", where, hint="move module-level values into the class or function "
                                "that uses them"), impl, text)
    if node.name in builtin or node.name in RESERVED:
        raise with_source(error("E522", f"{impl.name} defines {node.name}, a name generated files already use",
                                where, hint=f"rename it, e.g. {node.name}{impl.stem.title().replace('_', '')}"),
                          impl, text)
    return [node.name]


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


@functools.lru_cache(maxsize=1)
def builtin_helper_names() -> set[str]:
    """Classes and functions of gendsl/codegen/helpers/, read as text (the front end runs no torch)."""
    folder = resources.files("gendsl").joinpath("codegen").joinpath("helpers")
    names = set()
    for item in folder.iterdir():
        if item.name.endswith(".py") and item.name != "__init__.py":
            names |= {n.name for n in ast.parse(item.read_text(encoding="utf-8")).body
                      if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    return names


# ---- guarded rules ----

def guarded(plugin: Plugin, kind: str, entry) -> Callable:
    """The entry's rule, with the plugin's faults turned into diagnostics that point into it."""
    from gendsl.library.signature import EntryError

    rule = entry.rule

    @functools.wraps(rule)
    def run(*args, **kwargs):
        try:
            result = rule(*args, **kwargs)
        except EntryError:
            raise
        except Exception as exc:
            raise _rule_failure(plugin, entry, exc, args, kwargs) from None
        verify_implementation(plugin, kind, entry, result)
        return result
    return run


def _rule_failure(plugin: Plugin, entry, exc: Exception, args, kwargs) -> GendslError:
    frames = traceback.extract_tb(exc.__traceback__)
    text = plugin.path.read_text(encoding="utf-8")
    line = next((f.lineno for f in reversed(frames) if same_file(f.filename, plugin.path)),
                rule_line(entry.rule, plugin.path))
    called = ", ".join([_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()])
    return with_source(error("E524", f"the rule of {entry.name} (plugin {plugin.name}) raised "
                             f"{type(exc).__name__}: {exc}", span_at(plugin.path, text, line),
                             hint="a rule reports inputs it cannot take with `require(...)` or "
                                  "EntryError(message, hint); anything else is a bug in the plugin",
                             notes=[Note(message=f"while checking {entry.name}({called})")]), plugin.path, text)


def _describe(value: Any) -> str:
    return value.describe() if hasattr(value, "describe") else repr(value)


def verify_implementation(plugin: Plugin, kind: str, entry, result: Any) -> None:
    """A rule's result must be its registry's kind, with code that calls only what a generated
    file has: torch, math, Python's builtins, and the helpers it lists (which must exist)."""
    from gendsl.library.distributions import Family
    from gendsl.library.entries import Built
    from gendsl.library.functions import Fn

    expected = {"layer": Built, "function": Fn, "distribution": Family}[kind]
    helpers = tuple(getattr(result, "helpers", ()))
    problem = ""
    if not isinstance(result, expected):
        problem = f"returns {type(result).__name__}, not a {expected.__name__}"
    elif not result.code.strip():
        problem = "returns no code: the entry has no implementation"
    else:
        missing = [h for h in helpers if h not in plugin.definitions and h not in builtin_helper_names()]
        called = _free_names(result.code)
        unknown = sorted(n for n in called or () if n not in helpers and n not in GENERATED_IMPORTS.values()
                         and not hasattr(builtins, n))
        if called is None:
            problem = f"returns code that is not a Python expression: {result.code!r}"
        elif missing:
            problem = f"lists helper {missing[0]}, {_not_implemented(plugin)}"
        elif unknown:
            listed = unknown[0] in plugin.definitions
            problem = (f"returns code that calls {unknown[0]}, " +
                       ("which it does not list in helpers=(...)" if listed else _not_implemented(plugin)))
    if problem:
        text = plugin.path.read_text(encoding="utf-8")
        raise with_source(error("E523", f"{kind} {entry.name} (plugin {plugin.name}) {problem}",
                                span_at(plugin.path, text, rule_line(entry.rule, plugin.path)),
                                hint="each entry's code calls torch or a class or function of the plugin's "
                                     "IMPLEMENTATION file, listed in helpers=(...)"), plugin.path, text)


def _not_implemented(plugin: Plugin) -> str:
    if plugin.implementation is None:
        return "which nothing implements (the plugin names no IMPLEMENTATION file)"
    return f"which neither torch nor {plugin.implementation.name} defines"


def _free_names(template: str) -> set[str] | None:
    """Names a code template reads (its `{placeholders}` stand for operands); None if not Python."""
    try:
        parts = string.Formatter().parse(template)
        code = "".join(literal + ("_operand" if field is not None else "") for literal, field, _, _ in parts)
        tree = ast.parse(code, mode="eval")
    except (ValueError, SyntaxError):
        return None
    bound = {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in n.args.args}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - bound - {"_operand"}


# ---- spans into plugin files ----

def span_at(path: Path, text: str, line: int, col: int = 0) -> Span:
    """Line `line` of a plugin file, from column `col` (default: its first non-blank character)."""
    lines = text.split("\n")
    content = lines[line - 1] if 0 < line <= len(lines) else ""
    col = col or len(content) - len(content.lstrip()) + 1
    return Span(file=str(path), line=line, col=col, end_line=line, end_col=max(col + 1, len(content.rstrip()) + 1))


def line_span(path: Path, text: str, needle: str) -> Span:
    """The first line of a file that contains `needle` (line 1 if none does)."""
    number = next((i for i, line in enumerate(text.split("\n"), 1) if needle in line), 1)
    return span_at(path, text, number)


def with_source(diagnostic: Diagnostic, path: Path, text: str) -> GendslError:
    """A GendslError that carries the file it points into (the CLI shows the line)."""
    exc = GendslError(diagnostic)
    exc.sources = {str(path): SourceFile(str(path), text)}
    return exc


# ---- faults of the PyTorch code, as it runs in a generated model ----

def implementation_fault(exc: BaseException, plugins: tuple[Plugin, ...]) -> GendslError | None:
    """An exception raised inside a plugin's copied class or function while a generated model
    ran (the innermost such frame): a diagnostic at the implementation file's line, not E999."""
    found, tb = None, exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        qualname = getattr(code, "co_qualname", code.co_name)  # Python 3.11+: Class.method
        if code.co_filename.startswith("<gendsl:"):
            plugin = next((p for p in plugins if qualname.split(".")[0] in p.definitions), None)
            if plugin is not None and plugin.implementation is not None:
                found = (plugin, qualname, code.co_firstlineno, tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return None
    plugin, qualname, first, line = found
    impl, text = plugin.implementation, plugin.implementation_text
    start = _definition_line(text, qualname)
    where = span_at(impl, text, start + line - first if start else 1)
    return with_source(error("E526", f"{qualname} of plugin {plugin.name} raised {type(exc).__name__} while the "
                             f"model ran: {exc}", where,
                             hint=f"a bug in {impl.name}; the conformance test runs each entry of a plugin on "
                                  "several inputs: GENDSL_CONFORMANCE_PLUGINS=FILE pytest "
                                  "tests/conformance/test_plugins.py"), impl, text)


def _definition_line(text: str, qualname: str) -> int:
    """The first line (its first decorator's, as Python counts it) of `Class.method` in a file; 0 if absent."""
    body, node = ast.parse(text).body, None
    for part in (p for p in qualname.split(".") if p != "<locals>"):
        node = next((n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part), None)
        if node is None:
            return 0
        body = node.body
    return node.decorator_list[0].lineno if node.decorator_list else node.lineno
