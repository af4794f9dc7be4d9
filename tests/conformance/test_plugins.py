"""Conformance of plugin entries: the same tests as the built-ins', by name, with the plugin loaded.

The example plugin (examples/plugins/gated.py) is always walked. To hold your own plugin to the
same test, name it (several: separated by the path separator, `:` on Unix):

    GENDSL_CONFORMANCE_PLUGINS=mylayers.py pytest tests/conformance/test_plugins.py

Every entry a plugin registers gets the test of its registry: layers check, render, emit and run
on several input shapes with the checker's output shape and parameter count; functions give the
checker's type in a network or a loss; distributions draw in their support with finite log_prob.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gendsl.library.distributions import DISTRIBUTIONS
from gendsl.library.functions import FUNCTIONS
from gendsl.library.layers import LAYERS
from gendsl.plugins import plugins_loaded
from tests.conformance import test_registries as conformance

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugins" / "gated.py"
TESTS = {"layer": (conformance.test_layer, conformance.test_layer_options_out_of_range_are_diagnostics),
         "function": (conformance.test_function,),
         "distribution": (conformance.test_distribution,)}


def plugin_files() -> list[Path]:
    extra = os.environ.get("GENDSL_CONFORMANCE_PLUGINS", "")
    return [EXAMPLE, *(Path(p).resolve() for p in extra.split(os.pathsep) if p)]


def plugin_entries() -> list[tuple[Path, str, str]]:
    """(plugin, kind, name) of every entry of every plugin, read by loading each one in turn."""
    found = []
    for path in plugin_files():
        with plugins_loaded([path]) as (plugin,):
            found += [(path, kind, name) for kind, name in plugin.entries]
    return found


ENTRIES = plugin_entries()


def test_the_example_plugin_adds_a_layer_a_function_and_a_distribution():
    kinds = {kind for path, kind, _ in ENTRIES if path == EXAMPLE}
    assert kinds == {"layer", "function", "distribution"}, kinds


@pytest.mark.parametrize("path, kind, name", ENTRIES, ids=[f"{p.parent.name}/{p.stem}:{k}:{n}" for p, k, n in ENTRIES])
def test_plugin_entry(path, kind, name, tmp_path):
    registry = {"layer": LAYERS, "function": FUNCTIONS, "distribution": DISTRIBUTIONS}[kind]
    with plugins_loaded([path]):
        assert name in registry
        for test in TESTS[kind]:
            test(name, tmp_path)
    assert name not in registry, f"{name} stayed registered after its plugin was unloaded"
