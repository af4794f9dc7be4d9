"""The `gendsl` command: the only place that prints diagnostics and chooses exit codes.

Exit codes: 0 success, 1 the input has errors (spec, data, flag, checkpoint), 70 an internal
error (a bug in gendsl, reported as such), 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from pathlib import Path
from typing import Callable

from gendsl.diagnostics import Diagnostic, GendslError, error, has_errors
from gendsl.report import TextReport, as_json, dumps, use_color

EXAMPLES = """\
examples:
  gendsl check specs/vae.gen                      check a spec, print its networks and steps
  gendsl check specs/*.gen --format json          diagnostics as JSON (for editors)
  gendsl check specs/vae.gen --set beta=4         override a param
  gendsl render specs/gan_ring.gen -o gan.svg     draw the model (compute view)
  gendsl render specs/vae.gen -o vae.png --view pgm   the graphical model only
  gendsl check my.gen --plugin mylayers.py        use the layers a plugin file registers
"""


class UsageError(Exception):
    """A bad flag or argument: reported as a diagnostic, exit code 1."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit 2
        raise UsageError(message)


class Output:
    """Collects diagnostics and renders them once, at the end."""

    def __init__(self, fmt: str = "text"):
        self.format = fmt
        self.sources: dict = {}
        self.diagnostics: list[Diagnostic] = []

    def add(self, diagnostics, sources=None) -> None:
        self.diagnostics += list(diagnostics)
        self.sources.update(sources or {})

    def flush(self) -> None:
        if self.format == "json" or not self.diagnostics:
            return
        print(TextReport(self.sources, color=use_color(sys.stderr)).all(self.diagnostics), file=sys.stderr)


def build_parser() -> Parser:
    parser = Parser(prog="gendsl", description="A declarative language for deep generative models: "
                    "check, draw, compile and train .gen specs.",
                    epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="store_true", help="print the versions of gendsl, PyTorch and Python")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="override a param of the spec (repeatable), e.g. --set beta=4")
        p.add_argument("--model", help="which model of the file (default: the last one)")
        p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                       help="load a plugin: a Python file that registers layers, functions or distributions "
                            "(repeatable; also read from [tool.gendsl] plugins in the nearest pyproject.toml)")

    check = sub.add_parser("check", help="check specs and summarize their networks",
                           description="Parse and check specs: names, types and shapes, roles and "
                           "gradient flow. Exit 0 and print a summary when a spec is sound, exit 1 with "
                           "diagnostics otherwise.", epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("files", nargs="+", metavar="FILE", help=".gen spec files")
    common(check)
    check.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")

    render = sub.add_parser("render", help="draw a spec as a diagram (SVG, PNG or DOT)",
                            description="Draw a checked spec with graphviz. The compute view shows "
                            "networks as clusters with their layers, data and latent variables "
                            "(observed shaded), calls between networks, losses as formulas and a "
                            "schedule of the train steps; the pgm view shows the random variables in a "
                            "plate, with parameters theta (generative) and phi (encoders).",
                            epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    render.add_argument("file", metavar="FILE")
    render.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output file; the extension picks the format: .svg, .png, .pdf or .dot")
    render.add_argument("--view", choices=("compute", "pgm"), default="compute",
                        help="compute: networks, losses and the training schedule (default); "
                        "pgm: the graphical model with theta and phi")
    common(render)
    add_run_commands(sub, common)
    from gendsl.tools import register as add_tool_commands  # fmt, lsp: front end only, no torch

    add_tool_commands(sub)
    return parser


def add_run_commands(sub, common: Callable) -> None:
    """Commands that need torch are registered here; their modules load only when run."""
    try:
        from gendsl.commands import register
    except ImportError:
        return
    register(sub, common)


def cmd_check(args, out: Output) -> int:
    results = []
    for path in args.files:
        ok, summary, diagnostics, plugins = _check_one(args, path, out)
        results.append({"file": path, "ok": ok, "summary": summary, "diagnostics": [as_json(d) for d in diagnostics],
                        **({"plugins": [p.describe() for p in plugins]} if plugins else {})})
    if out.format == "json":
        print(dumps({"ok": all(r["ok"] for r in results), "files": results}))
    return 0 if all(r["ok"] for r in results) else 1


def _check_one(args, path: str, out: Output) -> tuple:
    """Check one spec with its plugins: (ok, summary, diagnostics, plugins). A plugin's fault
    (it fails to load, a rule raises) is that file's diagnostic; the other files are still checked."""
    from gendsl.graph.check import check_file
    from gendsl.plugins import plugins_loaded, requested_plugins
    from gendsl.summary import format_summary, summarize

    try:
        with plugins_loaded(requested_plugins(args.plugin, path)) as plugins:
            checked = check_file(path, args.set, args.model)
            summary = summarize(checked.graph) if checked.ok else None
    except GendslError as exc:
        out.add(exc.diagnostics, getattr(exc, "sources", None))
        return False, None, exc.diagnostics, ()
    out.add(checked.diagnostics, checked.sources)
    if summary is not None and out.format == "text":
        for plugin in plugins:
            print(f"plugin {plugin.describe()}")
        print(format_summary(summary, path))
    return checked.ok, summary, checked.diagnostics, plugins


def cmd_render(args, out: Output) -> int:
    from gendsl.graph.check import check_file
    from gendsl.diagram import render_file
    from gendsl.plugins import plugins_loaded, requested_plugins

    with plugins_loaded(requested_plugins(args.plugin, args.file)):  # the diagram reads their entries too
        checked = check_file(args.file, args.set, args.model)
        out.add(checked.diagnostics, checked.sources)
        if not checked.ok:
            return 1
        written, notes = render_file(checked.graph, Path(args.output), args.view)
    out.add(notes)
    for path in written:
        print(f"wrote {path}")
    return 0 if not has_errors(notes) else 1


COMMANDS = {"check": cmd_check, "render": cmd_render}


def versions() -> str:
    """`gendsl 0.1.0 (torch 2.13.0+cpu, Python 3.11.7)`, read from package metadata (no torch import)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from gendsl import __version__

    try:
        torch = version("torch")
    except PackageNotFoundError:
        torch = "not installed"
    return f"gendsl {__version__} (torch {torch}, Python {platform.python_version()})"


def main(argv: list[str] | None = None, *, collector_off: bool = False) -> int:
    """Run the CLI; never lets a traceback reach the user. collector_off: `run()` turned the
    cycle collector off for the imports (see `collector_on`)."""
    out = Output()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if collector_off:
            collector_on(args.command)
        if args.version:
            print(versions())
            return 0
        if args.command is None:
            parser.print_help()
            return 1
        out.format = getattr(args, "format", "text")
        handler = COMMANDS.get(args.command) or args.handler
        return handler(args, out)
    except UsageError as exc:
        out.add([error("E505", str(exc), hint="run `gendsl --help` or `gendsl COMMAND --help`")])
        return 1
    except GendslError as exc:
        out.add(exc.diagnostics, getattr(exc, "sources", None))
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gendsl check ... | head`: the reader left; nothing to report
        sys.stdout = open(os.devnull, "w")
        return 0
    except Exception as exc:  # a bug in gendsl: say so, with what to report
        import traceback

        from gendsl.runtime.errors import out_of_domain

        found = out_of_domain(exc)  # the spec's network gave a distribution a parameter it cannot take
        if found is not None:
            out.add([found])
            return 1

        out.add([error("E999", f"internal error: {type(exc).__name__}: {exc}",
                       hint="this is a bug in gendsl, not in your spec; please report it with the "
                            "spec and this command",
                       notes=[_where(traceback.extract_tb(exc.__traceback__))])])
        return 70
    finally:
        out.flush()


def _where(frames):
    from gendsl.diagnostics import Note

    last = frames[-1] if frames else None
    return Note(message=f"raised at {Path(last.filename).name}:{last.lineno} in {last.name}" if last else "")


# What `check` and `render` import (lazily, so that `gendsl --help` stays quick)
FRONT_END_MODULES = {"check": ("gendsl.graph.check", "gendsl.plugins", "gendsl.summary"),
                     "render": ("gendsl.graph.check", "gendsl.plugins", "gendsl.diagram")}


def collector_on(command: str | None) -> None:
    """Load the modules of the front end, freeze what the imports made and turn the cycle
    collector back on. Modules, classes and schemas (some 60,000 objects) live until the process
    ends: the collector's passes over them during the imports, and the interpreter's last one at
    exit, found nothing to free and took a quarter to a third of the CPU time of a cold `gendsl
    check`. Later passes skip frozen objects; what the checks leave in cycles is still collected."""
    for module in FRONT_END_MODULES.get(command, ()):
        importlib.import_module(module)
    gc.freeze()
    gc.enable()


def run() -> None:
    """Console-script entry point: the cycle collector is off until the command's imports are
    done (`collector_on`), and what is alive at the end is frozen (the process exits next)."""
    gc.disable()
    try:
        code = main(collector_off=True)
    finally:
        gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
