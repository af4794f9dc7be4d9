"""Methods of model objects: `f.inverse(z)` of a flow, `q.loss(eps)` and `q.reverse(eps)` of a
diffusion.

An entry is named `KIND.METHOD`. Its rule takes the object (an ObjectType whose `value` is the
type of the data it is over) and the call's arguments, and returns a `MethodUse`: the result type,
where the call may appear and the code the model method emits. Arguments are bound like any
registry entry's, so an unknown option is an E221 with a did-you-mean; options other tools have
that gendsl does not implement are refused by name, with a hint saying what exists instead.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from gendsl.library.entries import Entry, Registry
from gendsl.library.signature import EntryError
from gendsl.types import SCALAR, NetType, ObjectType, TensorType, Type, compatible

METHODS = Registry("method")

Context = Literal["loss", "sample"]


@dataclass(frozen=True)
class MethodUse:
    out: Type
    contexts: tuple[Context, ...]   # where a call may appear
    code: str                       # template: {obj} the object, {0}, {1}, ... the arguments, {data}
                                    # the object's data in the batch, {n} the batch size, {shape}
                                    # the per-sample shape of the data


@dataclass(frozen=True)
class MethodEntry(Entry):
    """A method's registry entry: an Entry that also names the options it refuses, with why."""

    kind: str = ""                                   # flow or diffusion
    method: str = ""
    refused: tuple[tuple[str, str], ...] = ()        # (option, hint): known elsewhere, not implemented


class MethodError(EntryError):
    """A method's rule refusing its arguments with a code of its own (E203, E321)."""

    def __init__(self, code: str, message: str, hint: str = ""):
        super().__init__(message, hint)
        self.code = code


def method(kind: str, name: str, doc: str, refused: dict[str, str] | None = None):
    """Register `KIND.NAME`; `refused` maps options other tools have to a hint for gendsl's way."""
    def decorate(rule):
        key = f"{kind}.{name}"
        METHODS.register(key, doc, skip=1)(rule)
        entry = METHODS[key]
        METHODS[key] = MethodEntry(**{f.name: getattr(entry, f.name) for f in fields(entry)}, kind=kind,
                                   method=name, refused=tuple((refused or {}).items()))
        return rule
    return decorate


def methods_of(kind: str) -> dict[str, MethodEntry]:
    """The methods of a kind of object, by method name."""
    return {entry.method: entry for entry in METHODS.values() if entry.kind == kind}


@method("flow", "inverse", "the data a latent value maps back to: x = f^-1(z)",
        refused={"temperature": "sampling at a temperature is not an option of {obj}.inverse: scale the latent "
                                "instead, e.g. {obj}.inverse(0.7 * z)"})
def inverse(flow: ObjectType, z: TensorType) -> MethodUse:
    data = flow.value
    if data is not None and not compatible(z, data):
        raise MethodError("E203", f"{flow.name}.inverse expects {data.describe()}, got {z.describe()}",
                          f"{flow.name} maps {data.describe()} to its latent and back")
    # the flow runs on a batch: a shared latent value is inverted as a batch of one
    code = "{obj}.inverse({0})" if z.batched else "{obj}.inverse({0}[None])[0]"
    return MethodUse(out=data.as_batched(z.batched), contexts=("loss", "sample"), code=code)


def denoiser(diffusion: ObjectType, net: NetType) -> None:
    """The network of a diffusion method: a denoiser of the diffusion's data type."""
    data = diffusion.value
    if net.role == "denoiser" or data is None:
        return  # a denoiser's signature is checked once, at its declaration (E310)
    if len(net.inputs) != 2 or not compatible(data, net.inputs[0]) or net.inputs[1] != TensorType(kind="step") \
            or not compatible(net.output, data):
        raise MethodError("E321", f"{net.name} must map (x_t: {data.describe()}, t: step) to {data.describe()}, "
                          f"but it is {net.describe()}",
                          f"declare `denoiser {net.name}(x_t: {data.describe()}, t: step) -> {data.describe()}`")


@method("diffusion", "loss", "the simple noise-prediction loss of Ho et al. (2020), one number per sample")
def diffusion_loss(diffusion: ObjectType, eps: NetType) -> MethodUse:
    denoiser(diffusion, eps)
    return MethodUse(out=SCALAR, contexts=("loss",), code="{obj}.loss({0}, {data})")


_DDIM = ("DDIM sampling is not implemented: {obj}.reverse runs the full ancestral chain of the process; "
         "fewer steps come from the process itself, e.g. Gaussian(steps=100)")


@method("diffusion", "reverse", "samples by the reverse process, from noise to data (DDPM ancestral sampling)",
        refused={"steps": _DDIM, "eta": _DDIM})
def reverse(diffusion: ObjectType, eps: NetType) -> MethodUse:
    denoiser(diffusion, eps)
    return MethodUse(out=diffusion.value, contexts=("sample",), code="{obj}.reverse({0}, {n}, {shape}, self.device)")
