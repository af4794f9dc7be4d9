"""Python identifiers for spec names: no clash with keywords, torch's nn.Module attributes or
the generated code's own locals."""

from __future__ import annotations

import keyword
import re

# nn.Module attributes and methods a submodule name must not shadow (torch is not imported here)
MODULE_ATTRIBUTES = {
    "forward", "training", "train", "eval", "parameters", "named_parameters", "buffers", "children",
    "modules", "state_dict", "load_state_dict", "to", "cpu", "cuda", "float", "double", "half",
    "apply", "zero_grad", "register_buffer", "register_parameter", "add_module", "type", "extra_repr",
    "requires_grad_", "get_submodule", "get_parameter", "share_memory", "dump_patches", "call_super_init",
    "sample", "device", "log_prob", "elbo", "iwae", "bound", "spec", "losses", "steps", "bfloat16",
}
# names a local variable must not shadow: modules and helpers the generated code calls
LOCALS = {"self", "batch", "n", "torch", "nn", "F", "D", "math", "k", "dist", "draw", "out", "i", "h", "w",
          "contextlib", "steps", "whole", "bce", "mse", "l1", "sinusoidal", "gradient_penalty", "soft_attention",
          "hard_attention", "kl_divergence", "frozen", "made_masks", "log_joint", "log_px", "mean"}


def _safe(name: str, reserved: set[str]) -> str:
    text = re.sub(r"\W", "_", name)
    if keyword.iskeyword(text) or keyword.issoftkeyword(text) or text in reserved:
        text += "_"
    return text


def identifier(name: str) -> str:
    """A local-variable name for a spec name (specs already restrict names to \\w+)."""
    return _safe(name, LOCALS)


def attribute(name: str) -> str:
    """A `self.` attribute name for a spec name: must not shadow nn.Module's own."""
    return _safe(name, MODULE_ATTRIBUTES)


class Names:
    """Hands out unique identifiers within one scope (a class's attributes or a function's locals)."""

    def __init__(self, taken: set[str] = frozenset()):
        self.taken = set(taken)

    def fresh(self, base: str, attr: bool = False) -> str:
        base = attribute(base) if attr else identifier(base)
        name, i = base, 2
        while name in self.taken:
            name, i = f"{base}{i}", i + 1
        self.taken.add(name)
        return name


def suffix(name: str) -> str:
    """The part of a method name that comes from the spec (`loss_elbo`, `step_critic`)."""
    return re.sub(r"\W", "_", name)
