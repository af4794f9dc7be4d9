"""Checked graph -> PyTorch source. The generated file is what runs: `load_generated` executes it."""

from __future__ import annotations

import hashlib
import sys
import types

from gendsl.codegen.emit import Generated, generate, spec_hash

__all__ = ["Generated", "generate", "load_generated", "spec_hash"]


def load_generated(source: str, name: str = "gendsl_model") -> types.ModuleType:
    """Execute generated source as a module (it is our own output, never user text).

    The module is registered in sys.modules under a name unique to its source: torch.compile
    (and anything else that looks functions up by module) needs to find it there."""
    unique = f"{name}_{hashlib.sha256(source.encode()).hexdigest()[:12]}"
    if unique in sys.modules:
        return sys.modules[unique]
    module = types.ModuleType(unique)
    module.__file__ = f"<gendsl:{name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    sys.modules[unique] = module
    return module
