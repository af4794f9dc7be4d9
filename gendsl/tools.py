"""Editor tooling commands: `gendsl fmt` (the canonical layout) and `gendsl lsp` (the language server).

Both are front-end only (no torch). `cli.py` registers them; their modules load only when run.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from pathlib import Path

FMT_EXAMPLES = """\
examples:
  gendsl fmt specs/vae.gen                      rewrite the file in the canonical layout
  gendsl fmt --check specs/*.gen                exit 1 if any file is not in it (for CI)
  gendsl fmt --diff specs/vae.gen               show what would change, write nothing
  gendsl fmt --check docs/language.md           Markdown: the ```gen blocks are formatted
  gendsl fmt - < my.gen                         stdin to stdout (for an editor's format command)
"""


def register(sub) -> None:
    """Add `fmt` and `lsp` to the CLI's subparsers."""
    formatter = argparse.RawDescriptionHelpFormatter
    fmt = sub.add_parser("fmt", help="rewrite specs in the one canonical layout",
                         description="Lay out .gen specs (and the ```gen blocks of .md files) the one "
                         "canonical way: indentation, spaces, continuation lines, comment columns. Line "
                         "breaks and comments stay; what the spec means never changes.",
                         epilog=FMT_EXAMPLES, formatter_class=formatter)
    fmt.add_argument("files", nargs="+", metavar="FILE", help=".gen specs or .md files; - for stdin")
    fmt.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 if any file would change")
    fmt.add_argument("--diff", action="store_true", help="write nothing; print a unified diff")
    fmt.set_defaults(handler=cmd_fmt)

    lsp = sub.add_parser("lsp", help="run the language server (LSP over stdin/stdout)",
                         description="A Language Server Protocol server for .gen files on stdio: "
                         "diagnostics as you type, hover, go to definition, completion, document "
                         "symbols and formatting. Editors start it; it is not meant to be run by hand.")
    lsp.set_defaults(handler=cmd_lsp)


def cmd_fmt(args, out) -> int:
    """Format, check or diff each file; a file that does not parse is reported and left alone."""
    from gendsl.diagnostics import error
    from gendsl.source import SourceFile
    from gendsl.syntax.fmt import format_path

    would_change, failed = [], False
    for path in args.files:
        try:
            source = SourceFile("<stdin>", sys.stdin.read()) if path == "-" else SourceFile.read(path)
        except FileNotFoundError:
            out.add([error("E501", f"no such file: {path}", hint="check the path")])
            failed = True
            continue
        except (OSError, UnicodeDecodeError) as exc:
            out.add([error("E501", f"cannot read {path}: {exc}", hint="a spec is a UTF-8 text file")])
            failed = True
            continue
        result = format_path(source)
        if result.text is None:
            out.add(result.diagnostics, {source.path: source})
            failed = True
            continue
        if path == "-" and not (args.check or args.diff):
            sys.stdout.write(result.text)  # the whole text, changed or not: it replaces the input
        if not result.changed:
            continue
        would_change.append(path)
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(source.text.splitlines(True), result.text.splitlines(True),
                                                       f"{path} (before)", f"{path} (formatted)"))
        if args.check:
            print(f"would reformat {path}", file=sys.stderr)
        elif not args.diff and path != "-":
            _write_atomically(Path(path), result.text)
            print(f"reformatted {path}")
    if args.check and would_change:
        print(f"{len(would_change)} of {len(args.files)} files would be reformatted", file=sys.stderr)
        return 1
    return 1 if failed else 0


def _write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step: an interrupted fmt never leaves half a spec."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".fmt")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cmd_lsp(args, out) -> int:
    """Serve LSP on stdio until the client says exit."""
    from gendsl.lsp.server import serve

    serve()
    return 0
