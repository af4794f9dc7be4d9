"""The parser's disk cache (gendsl.syntax.parse.cache_file) only ever saves time: a broken or
stale file, or a cache folder that cannot be made, gives the same parser, silently."""

from __future__ import annotations

import logging
from pathlib import Path

from gendsl.source import SourceFile
from gendsl.syntax import parse

SPEC = (Path(__file__).resolve().parents[2] / "specs" / "vae.gen").read_text(encoding="utf-8")
fresh_parser = parse.parser.__wrapped__  # the builder under the per-process lru_cache


def tree_of(lark_parser) -> str:
    return lark_parser.parse(SPEC).pretty()


def test_second_build_loads_the_file_and_gives_the_same_parser(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = Path(parse.cache_file(parse.grammar_text()))
    assert path.parent == tmp_path / "gendsl"
    built = fresh_parser()
    assert path.is_file()
    caplog.set_level(logging.DEBUG, logger="lark")
    loaded = fresh_parser()
    assert "Loading grammar from cache" in caplog.text
    assert tree_of(loaded) == tree_of(built)


def test_a_broken_file_is_rebuilt_silently(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = Path(parse.cache_file(parse.grammar_text()))
    path.write_bytes(b"not a parser\n\x00\x01")
    rebuilt = fresh_parser()
    assert capfd.readouterr().err == ""
    assert not path.read_bytes().startswith(b"not a parser")  # replaced by a good one
    assert tree_of(rebuilt) == tree_of(parse.parser())


def test_a_stale_file_is_rebuilt(tmp_path, monkeypatch):
    """Another grammar's tables under this name (as if the hash in the name collided)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = Path(parse.cache_file(parse.grammar_text()))
    other = Path(parse.cache_file("start: \"x\"\n"))
    assert other != path
    from lark import Lark

    Lark('start: "x"\n', parser="lalr", cache=str(other))
    path.write_bytes(other.read_bytes())
    assert tree_of(fresh_parser()) == tree_of(parse.parser())


def test_no_cache_folder_means_no_disk_cache(tmp_path, monkeypatch, capfd):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the folder cannot be made under a file
    assert parse.cache_file(parse.grammar_text()) is False
    module, diagnostics = parse.parse_source(SourceFile("vae.gen", SPEC))
    assert module is not None and diagnostics == []
    assert tree_of(fresh_parser()) == tree_of(parse.parser())
    assert capfd.readouterr().err == ""
