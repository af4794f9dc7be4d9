"""Plugins: a user's Python file that adds layers, functions or distributions to gendsl's registries.

A plugin runs only when it is named: by `--plugin FILE` on the command line, or by the
`plugins` list of the `[tool.gendsl]` table of the pyproject.toml nearest to the spec. It is
split in two parts so that the front end stays torch-free and generated files stay standalone:

- the rule module (the file named): registers entries with the built-in decorators
  (`gendsl.library.layers.layer`, `...functions.function`, `...distributions.distribution`) and
  never imports torch;
- its implementation file (`IMPLEMENTATION = "name.py"` in the rule module, next to it): classes
  and functions of PyTorch code that the code generator copies into generated files by name,
  as it copies the helpers of gendsl/codegen/helpers/.

`plugins_loaded(paths)` adds their entries to the registries for the duration of a command and
removes them afterwards. Each entry's rule is guarded: an exception other than EntryError, or a
result whose code calls something nothing implements, is a diagnostic that points into the plugin.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import pkgutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from gendsl.diagnostics import GendslError, error
from gendsl.plugin_code import (guarded, line_span, parse_python, read_implementation, read_text, refuse_torch,
                                rule_line, same_file, span_at, with_source)

KINDS = ("layer", "function", "distribution")   # the registries a plugin may add to
CONFIG = "pyproject.toml"


@dataclass(frozen=True)
class Plugin:
    """A loaded plugin: its files, what it registered, and the definitions generated code may copy."""

    path: Path
    digest: str                                  # of both files: part of the spec hash of a run
    entries: tuple[tuple[str, str], ...]         # (kind, name) in registration order
    implementation: Path | None = None
    implementation_text: str = ""
    definitions: tuple[str, ...] = ()            # classes and functions of the implementation file

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> str:
        """`gated.py: layer GatedLinear, function snake`."""
        return f"{self.path}: " + ", ".join(f"{kind} {name}" for kind, name in self.entries)


@dataclass(frozen=True)
class Request:
    """A plugin file to load, and what named it: --plugin, or a line of a pyproject.toml."""

    path: Path
    config: Path | None = None
    line: int = 0


_LOADED: list[Plugin] = []


def loaded_plugins() -> tuple[Plugin, ...]:
    """The plugins in use now, in load order (the code generator copies their definitions)."""
    return tuple(_LOADED)


# ---- which plugins a command uses ----

def requested_plugins(flags: list[str] | None, spec: str | Path | None) -> list[Request]:
    """The plugin files named by --plugin (relative to the working folder) and by the
    `[tool.gendsl] plugins` list of the pyproject.toml nearest to the spec (relative to it)."""
    requests = [Request(Path(p)) for p in flags or ()]
    if spec is not None:
        requests += configured_plugins(Path(spec))
    unique: dict[Path, Request] = {}
    for request in requests:
        unique.setdefault(request.path.resolve(), request)
    return list(unique.values())


def find_config(spec: Path) -> Path | None:
    """The pyproject.toml in the spec's folder or the nearest folder above it."""
    for folder in [spec.resolve().parent, *spec.resolve().parents]:
        if (folder / CONFIG).is_file():
            return folder / CONFIG
    return None


def configured_plugins(spec: Path) -> list[Request]:
    """Plugins the spec's project configuration names (none without a `[tool.gendsl]` table)."""
    config = find_config(spec)
    if config is None:
        return []
    text = config.read_text(encoding="utf-8", errors="replace")
    if "tool.gendsl" not in text:  # another tool's configuration: not ours to read (or to refuse)
        return []
    try:
        import tomllib
    except ImportError:  # Python 3.10: no TOML reader in the standard library
        if "[tool.gendsl]" in text:
            raise GendslError(error("E520", f"{config}: reading [tool.gendsl] needs Python 3.11 or later",
                                    line_span(config, text, "[tool.gendsl]"),
                                    hint="name the plugins with --plugin FILE instead")) from None
        return []
    try:
        table = tomllib.loads(text).get("tool", {}).get("gendsl", {})
    except tomllib.TOMLDecodeError as exc:
        line = int(str(exc).rsplit("line ", 1)[-1].split(",")[0]) if "line " in str(exc) else 1
        raise with_source(error("E520", f"{config} is not valid TOML: {exc}", span_at(config, text, line),
                                hint="fix the file, or name the plugins with --plugin FILE"), config, text)
    listed = table.get("plugins", []) if isinstance(table, dict) else None
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
        raise with_source(error("E520", f"{config}: [tool.gendsl] plugins must be a list of file paths",
                                line_span(config, text, "plugins"),
                                hint='write `plugins = ["mylayers.py"]` (paths relative to this file)'),
                          config, text)
    return [Request(config.parent / p, config, line_span(config, text, p).line) for p in listed]


# ---- loading ----

@contextlib.contextmanager
def plugins_loaded(requests: list[Request | Path]) -> Iterator[tuple[Plugin, ...]]:
    """Load the plugins (their entries join the registries) for the body of the `with`; the
    registries are restored afterwards, also when loading fails part way."""
    saved = {id(r): (r, dict(r)) for r in registries()}
    count = len(_LOADED)
    try:
        for request in requests:
            _LOADED.append(load_plugin(request if isinstance(request, Request) else Request(Path(request))))
        yield loaded_plugins()
    finally:
        del _LOADED[count:]
        for registry, entries in saved.values():
            registry.clear()
            registry.update(entries)


def registries() -> list:
    """Every Registry of gendsl.library (a plugin must not change the ones it may not add to)."""
    import gendsl.library
    from gendsl.library.entries import Registry

    found: list = []
    for info in pkgutil.iter_modules(gendsl.library.__path__):
        module = importlib.import_module(f"gendsl.library.{info.name}")
        found += [v for v in vars(module).values() if isinstance(v, Registry) and v not in found]
    return found


def load_plugin(request: Request) -> Plugin:
    """Import one plugin's rule module and check what it registered; raises GendslError."""
    path = request.path
    text = _read_plugin(request)
    if path.suffix != ".py":
        raise GendslError(error("E520", f"plugin {path} is not a Python file", span_at(path, text, 1),
                                hint="a plugin is a .py file that registers entries"))
    tree = parse_python(path, text, "E521")
    refuse_torch(path, text, tree)
    before = {r.what: dict(r) for r in registries()}
    module = _import(path, text)
    implementation, impl_text, definitions = read_implementation(path, text, tree, module)
    added = _added_entries(path, text, before)
    plugin = Plugin(path=path, digest=hashlib.sha256((text + "\0" + impl_text).encode()).hexdigest()[:16],
                    entries=tuple((kind, name) for kind, name, _ in added), implementation=implementation,
                    implementation_text=impl_text, definitions=definitions)
    for kind, name, registry in added:
        registry[name] = dataclasses.replace(registry[name], rule=guarded(plugin, kind, registry[name]))
    return plugin


def _read_plugin(request: Request) -> str:
    """The rule module's text; a missing file points at the configuration line naming it."""
    if request.config is None or request.path.is_file():
        return read_text(request.path, "plugin")
    config_text = request.config.read_text(encoding="utf-8", errors="replace")
    raise with_source(error("E520", f"no such plugin file: {request.path}",
                            span_at(request.config, config_text, request.line or 1),
                            hint=f"paths in [tool.gendsl] plugins are relative to {request.config}"),
                      request.config, config_text)


def _import(path: Path, text: str):
    """Execute the rule module (the user's code: anything it raises is reported, not a traceback)."""
    name = f"gendsl_plugin_{path.stem}_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look modules up by name while it runs
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise _import_failure(path, text, exc) from None
    finally:
        sys.modules.pop(name, None)
    return module


def _import_failure(path: Path, text: str, exc: Exception) -> GendslError:
    frames = traceback.extract_tb(exc.__traceback__)
    line = next((f.lineno for f in reversed(frames) if same_file(f.filename, path)), 1)
    if isinstance(exc, ValueError) and frames and frames[-1].filename.endswith("entries.py") and \
            "registered twice" in str(exc):  # Registry.register refused a name it already has
        return with_source(error("E522", f"plugin {path.name} registers a name gendsl already has: {exc}",
                                 span_at(path, text, line), hint="rename the entry: a plugin adds names, "
                                 "it never replaces a built-in"), path, text)
    hint = "fix the plugin; gendsl imports it because --plugin or [tool.gendsl] plugins names it"
    if isinstance(exc, ModuleNotFoundError):
        hint = f"install {exc.name}, or remove the import; a plugin's rule module needs only gendsl"
    return with_source(error("E521", f"plugin {path.name} failed to import: {type(exc).__name__}: {exc}",
                             span_at(path, text, line), hint=hint), path, text)


def _added_entries(path: Path, text: str, before: dict[str, dict]) -> list[tuple[str, str, Any]]:
    """(kind, name, registry) of each entry the plugin registered; refuses anything else it did."""
    added = []
    taken = set().union(*(before.get(kind, {}) for kind in KINDS)) | {"kl"}
    for registry in registries():
        old = before.get(registry.what, {})
        changed = [n for n in old if registry.get(n) is not old[n]]
        new = [n for n in registry if n not in old]
        if changed:
            raise with_source(error("E522", f"plugin {path.name} replaces {registry.what} {changed[0]}",
                                    span_at(path, text, 1),
                                    hint="a plugin adds entries with new names; it never changes a built-in"),
                              path, text)
        for name in new:
            entry = registry[name]
            where = span_at(path, text, rule_line(entry.rule, path))
            if registry.what not in KINDS:
                raise with_source(error("E522", f"plugin {path.name} registers {registry.what} {name}; "
                                        f"plugins add {', '.join(KINDS[:-1])} and {KINDS[-1]} entries only",
                                        where, hint="remove the entry from the plugin"), path, text)
            if name in taken:
                raise with_source(error("E522", f"plugin {path.name} registers {registry.what} {name}, a name "
                                        "gendsl already has", where,
                                        hint="rename the entry: the same name would mean two things in a spec"),
                                  path, text)
            added.append((registry.what, name, registry))
    if not added:
        raise with_source(error("E521", f"plugin {path.name} registers nothing", span_at(path, text, 1),
                                hint="decorate its rules with gendsl.library.layers.layer, "
                                      "gendsl.library.functions.function or gendsl.library.distributions."
                                      "distribution"), path, text)
    return added
