"""Checked graph -> PyTorch source. The generated file is what runs: `load_generated` executes it."""

from __future__ import annotations

import types

from gendsl.codegen.emit import Generated, generate, spec_hash

__all__ = ["Generated", "generate", "load_generated", "spec_hash"]


def load_generated(source: str, name: str = "gendsl_model") -> types.ModuleType:
    """Execute generated source as a module (it is our own output, never user text)."""
    module = types.ModuleType(name)
    module.__file__ = f"<gendsl:{name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module
