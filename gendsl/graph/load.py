"""Files -> one model: parse the root spec and its imports, pick the model, apply `extends`.

Imports name files only (relative to the importing file); nothing in a spec can run code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gendsl import ast
from gendsl.diagnostics import Diagnostic, Note, did_you_mean, error
from gendsl.source import SourceFile, Span
from gendsl.syntax.parse import parse_source


@dataclass
class Loaded:
    """The chosen model with its inherited statements merged in, and what it can use."""

    model: ast.ModelDef
    blocks: dict[str, ast.BlockDef]
    models: dict[str, ast.ModelDef]
    sources: dict[str, SourceFile] = field(default_factory=dict)
    import_failed: bool = False   # names an import would have brought are not reported again
    dropped: bool = False         # a statement declared twice was dropped: types would mislead


@dataclass
class _Loader:
    sources: dict[str, SourceFile] = field(default_factory=dict)
    modules: dict[str, ast.Module] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    import_failed: bool = False   # an import was not loaded (what it defines must not be reported as unknown)

    def refuse_import(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)
        self.import_failed = True

    def load_file(self, path: Path, span: Span | None, stack: tuple[str, ...] = ()) -> None:
        key = str(path)
        if key in stack:
            self.refuse_import(error("E116", f"import cycle: {' -> '.join(Path(s).name for s in stack + (key,))}",
                                     span or _file_span(key), hint="remove one of the imports"))
            return
        if key in self.modules:
            return
        try:
            source = SourceFile.read(path) if span is not None else self.sources[key]
        except FileNotFoundError:
            shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path.name
            self.refuse_import(error("E113", f"imported file not found: {shown}", span,
                                     label="no such file", hint=_nearby_hint(path)))
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.refuse_import(error("E501", f"cannot read {path}: {exc}", span or _file_span(key),
                                     hint="check the path and that the file is UTF-8 text"))
            return
        self.sources[key] = source
        module, diagnostics = parse_source(source)
        self.diagnostics += diagnostics
        if module is None:
            return
        self.modules[key] = module
        for imp in module.imports:
            target = Path(imp.path.value)
            if "\x00" in imp.path.value or not imp.path.value.strip():
                self.refuse_import(error("E117", "an import path must name a file", imp.path.span,
                                         hint='write e.g. import "blocks/unet.gen"'))
                continue
            if target.is_absolute() or "://" in imp.path.value:
                self.refuse_import(error("E117", f"import path must be relative: {imp.path.value}",
                                         imp.path.span, hint="write the path relative to this file"))
                continue
            self.load_file((path.parent / target).resolve(), imp.path.span, stack + (key,))


def _file_span(path: str) -> Span:
    return Span(file=path, line=1, col=1, end_line=1, end_col=1)


def _nearby_hint(path: Path) -> str:
    folder = path.parent
    if folder.is_dir():
        hint = did_you_mean(path.name, [p.name for p in folder.glob("*.gen")])
        if hint:
            return hint
    return "paths are relative to the file that imports them"


def load_source(source: SourceFile, model: str | None = None) -> tuple[Loaded | None, list[Diagnostic]]:
    """Parse a spec (already read) and everything it imports; merge the chosen model's parents."""
    loader = _Loader(sources={source.path: source})
    root = Path(source.path).resolve() if not source.path.startswith("<") else Path(source.path)
    loader.sources[str(root)] = source
    loader.load_file(root, None)
    if str(root) not in loader.modules:
        return None, loader.diagnostics
    modules = loader.modules
    blocks: dict[str, ast.BlockDef] = {}
    models: dict[str, ast.ModelDef] = {}
    for module in modules.values():
        for block in module.blocks:
            _define(blocks, block, "block", loader.diagnostics)
        for m in module.models:
            _define(models, m, "model", loader.diagnostics)
    chosen = _choose_model(modules[str(root)], models, model, source, loader.diagnostics)
    if chosen is None:
        return None, loader.diagnostics
    found = len(loader.diagnostics)
    merged = _merge_parents(chosen, models, loader.diagnostics)
    if merged is None:
        return None, loader.diagnostics
    dropped = len(loader.diagnostics) > found  # the merge reports only statements it dropped
    return Loaded(model=merged, blocks=blocks, models=models, sources=loader.sources,
                  import_failed=loader.import_failed, dropped=dropped), loader.diagnostics


def _define(table: dict, item, what: str, diagnostics: list[Diagnostic]) -> None:
    name = item.name.name
    if name in table:
        diagnostics.append(error("E101", f"{what} '{name}' is defined twice", item.name.span,
                                 label="second definition",
                                 notes=[Note(message="first defined here", span=table[name].name.span)],
                                 hint=f"rename one of the two {what}s"))
        return
    table[name] = item


def _choose_model(root: ast.Module, models: dict[str, ast.ModelDef], wanted: str | None,
                  source: SourceFile, diagnostics: list[Diagnostic]) -> ast.ModelDef | None:
    if wanted is not None:
        if wanted in models:
            return models[wanted]
        diagnostics.append(error("E118", f"no model named '{wanted}'", _file_span(source.path),
                                 hint=did_you_mean(wanted, models) or f"models here: {', '.join(models) or 'none'}"))
        return None
    if not root.models:
        diagnostics.append(error("E119", "this file defines no model", _file_span(source.path),
                                 hint="add `model Name { ... }`; blocks and imports alone cannot be trained"))
        return None
    return root.models[-1]


def statement_key(stmt) -> tuple:
    """What a child model's statement replaces in its parent."""
    if isinstance(stmt, ast.DataDecl):
        return ("data", tuple(v.name.name for v in stmt.vars))
    if isinstance(stmt, ast.DensityDecl):
        return ("factor", stmt.name.name, tuple(v.name for v in stmt.vars))
    if isinstance(stmt, ast.ObserveDecl):
        return ("factor", "p", (stmt.name.name,))
    if isinstance(stmt, (ast.TrainBlock, ast.EvaluateBlock)):
        return (type(stmt).__name__,)
    if isinstance(stmt, ast.SampleDecl):
        return ("sample", stmt.name.name)
    return ("name", stmt.name.name)


def _merge_parents(model: ast.ModelDef, models: dict[str, ast.ModelDef],
                   diagnostics: list[Diagnostic]) -> ast.ModelDef | None:
    chain = [model]
    while chain[-1].extends is not None:
        parent_name = chain[-1].extends
        parent = models.get(parent_name.name)
        if parent is None:
            others = [m for m in models if m != model.name.name]
            diagnostics.append(error("E112", f"unknown model '{parent_name.name}' in extends",
                                     parent_name.span, hint=did_you_mean(parent_name.name, others)
                                     or "import the file that defines it"))
            return None
        if parent in chain:
            diagnostics.append(error("E115", f"model '{model.name.name}' extends itself through "
                                     f"'{parent_name.name}'", parent_name.span,
                                     hint="inheritance must not form a cycle"))
            return None
        chain.append(parent)
    body: dict[tuple, object] = {}
    for ancestor in reversed(chain):
        own: dict[tuple, object] = {}
        for stmt in ancestor.body:
            key = statement_key(stmt)
            if key in own:  # within one model a name is declared once; only children override
                diagnostics.append(_twice(stmt, own[key]))
                continue
            own[key] = stmt
            body[key] = stmt  # a child's statement replaces its parent's in place
    return model.model_copy(update={"body": tuple(body.values())})


def _name_span(stmt) -> Span:
    name = getattr(stmt, "name", None)
    if isinstance(name, ast.Ident):
        return name.span
    return stmt.vars[0].name.span if isinstance(stmt, ast.DataDecl) else stmt.span


def _twice(stmt, first) -> Diagnostic:
    what = {ast.TrainBlock: "train block", ast.EvaluateBlock: "evaluate block"}.get(type(stmt))
    name = what or f"'{statement_key(stmt)[-1] if not isinstance(stmt, ast.DataDecl) else statement_key(stmt)[1][0]}'"
    if isinstance(stmt, ast.DensityDecl):
        name = f"{stmt.name.name}({', '.join(v.name for v in stmt.vars)} | ...)"
    return error("E101", f"{name} is declared twice in this model", _name_span(stmt), label="second declaration",
                 notes=[Note(message="first declared here", span=_name_span(first))],
                 hint="each name is declared once in a model (a model that `extends` another may redeclare "
                      "its parent's names to override them)")
