"""Methods of model objects: `f.inverse(z)` of a flow, `q.loss(eps, y, drop=0.1)`, `q.vlb(eps)` and
`q.reverse(eps, y, guidance=3.0, steps=50, eta=0.0)` of a diffusion.

An entry is named `KIND.METHOD`. Its rule takes the object (an ObjectType whose `value` is the
type of the data it is over) and the call's arguments, and returns a `MethodUse`: the result type,
where the call may appear and the code the model method emits. Arguments are bound like any
registry entry's, so an unknown option is an E221 with a did-you-mean; options other tools have
that gendsl does not implement are refused by name, with a hint saying what exists instead.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Literal

from gendsl.library.entries import Entry, Registry
from gendsl.library.signature import Count, EntryError, NonNegative, Range
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


@method("flow", "inverse", "the data a latent value maps back to: x = f^-1(z), or x = f^-1(z; y) for a "
        "conditional flow f(x | y) given y",
        refused={"temperature": "sampling at a temperature is not an option of {obj}.inverse: scale the latent "
                                "instead, e.g. {obj}.inverse(0.7 * z)"})
def inverse(flow: ObjectType, z: TensorType, y: TensorType | None = None) -> MethodUse:
    data = flow.value
    if data is not None and not compatible(z, data):
        raise MethodError("E203", f"{flow.name}.inverse expects {data.describe()}, got {z.describe()}",
                          f"{flow.name} maps {data.describe()} to its latent and back")
    if flow.given:
        return conditional_inverse(flow, z, y)
    if y is not None:
        raise MethodError("E203", f"{flow.name} is given nothing, but {flow.name}.inverse is given {y.describe()}",
                          f"write {flow.name}.inverse(z), or declare `flow {flow.name}(x | y) <-> z` to condition on y")
    # the flow runs on a batch: a shared latent value is inverted as a batch of one
    code = "{obj}.inverse({0})" if z.batched else "{obj}.inverse({0}[None])[0]"
    return MethodUse(out=data.as_batched(z.batched), contexts=("loss", "sample"), code=code)


def conditional_inverse(flow: ObjectType, z: TensorType, y: TensorType | None) -> MethodUse:
    """x = f^-1(z; y) of a flow `f(x | y)`: z and y per sample, y of the type the flow is given."""
    wanted = flow.given[0]
    if y is None or not compatible(y, wanted) or (y.kind == "cat") != (wanted.kind == "cat"):
        found = f", got {y.describe()}" if y is not None else ""
        raise MethodError("E203", f"{flow.name} is conditional: {flow.name}.inverse needs z and a "
                          f"{wanted.describe()}{found}", f"write {flow.name}.inverse(z, y)")
    if not (z.batched and y.batched):
        raise MethodError("E203", f"{flow.name}.inverse(z, y) inverts one latent per sample, given that sample's y",
                          "give it a latent and a label per sample, e.g. a declared latent and a data label")
    return MethodUse(out=flow.value, contexts=("loss", "sample"), code="{obj}.inverse({0}, {1})")


# ---- diffusion: a denoiser eps(x_t, t) or eps(x_t, t, y), DDPM or DDIM sampling, guidance ----

Drop = Annotated[float, Range(0, 1, open_high=True)]   # label dropout: a probability below 1


def with_variances(x: TensorType) -> TensorType | None:
    """What a denoiser of learned variances returns for data `x`: the noise prediction and v stacked
    along the first per-sample axis (`real[1, 8, 8]` -> `real[2, 8, 8]`); None for a single number."""
    return x.with_shape((2 * x.shape[0], *x.shape[1:])) if x.shape else None


def denoiser(diffusion: ObjectType, net: NetType) -> None:
    """The network of a diffusion method: a denoiser of the diffusion's data type, of (x_t, t)
    or of (x_t, t, y) with a category label y, returning the noise prediction (and v, when the
    diffusion learns its variances)."""
    data = diffusion.value
    if data is None:
        return
    out = with_variances(data) if diffusion.learned else data
    if out is None:
        raise MethodError("E321", f"{diffusion.name} learns its variances, but its data {data.describe()} "
                          "is a single number: there is no axis to stack v on", "declare the data as real[1] "
                          "and the denoiser's output as real[2], or drop variance=learned")
    label = len(net.inputs) == 3 and isinstance(net.inputs[2], TensorType) and net.inputs[2].kind == "cat"
    if net.role != "denoiser" and (  # a denoiser's inputs are checked once, at its declaration (E310)
            len(net.inputs) not in (2, 3) or (len(net.inputs) == 3 and not label)
            or not compatible(data, net.inputs[0]) or net.inputs[1] != TensorType(kind="step")):
        raise MethodError("E321", f"{net.name} must map (x_t: {data.describe()}, t: step) to {out.describe()}, "
                          f"but it is {net.describe()}",
                          f"declare `denoiser {net.name}(x_t: {data.describe()}, t: step) -> {out.describe()}`")
    if not compatible(net.output, out):
        why = (f"{diffusion.name} learns its reverse variances (variance=learned): {net.name} must return "
               f"{out.describe()}, the noise prediction and v stacked along the first axis" if diffusion.learned
               else f"{net.name} must return the noise prediction {out.describe()}")
        last = f"Conv2d({out.shape[0]})" if len(out.shape) == 3 else f"Linear({out.shape[0]})"
        hint = (f"declare `-> {out.describe()}` and end the denoiser with {last}" if diffusion.learned else
                f"declare `-> {out.describe()}`, or learn the variances: Gaussian(..., variance=learned)")
        raise MethodError("E321", f"{why}, but it returns {net.output.describe()}", hint)


def net_label(net: NetType) -> TensorType | None:
    """The label a conditional denoiser takes (its third input), or None."""
    return net.inputs[2] if len(net.inputs) == 3 else None


def null_class(diffusion: ObjectType, eps: NetType, y: TensorType | None, why: str) -> int | None:
    """Check that a method's label fits its denoiser; the denoiser's null class (the label K of a
    `cat[K + 1]` input given labels `cat[K]`: "no label") when `why` needs one, else None."""
    denoiser(diffusion, eps)
    declared = net_label(eps)
    obj = diffusion.name
    if declared is None and y is not None:
        raise MethodError("E321", f"{eps.name} takes no label, but {obj} is given one",
                          f"declare `denoiser {eps.name}(x_t: ..., t: step, y: {y.describe()}) -> ...` "
                          "to condition on it, or leave the label out")
    if declared is None:
        if why:
            raise MethodError("E321", f"{why} needs a conditional denoiser and its label",
                              f"declare `denoiser {eps.name}(x_t: ..., t: step, y: cat[K + 1]) -> ...` and pass "
                              f"the label, e.g. {obj}.reverse({eps.name}, y, guidance=3.0)")
        return None
    if y is None:
        raise MethodError("E321", f"{eps.name} is conditional on a label {declared.describe()}, but {obj} is given "
                          "none", f"pass the label after the denoiser, e.g. {obj}.loss({eps.name}, y)")
    if y.kind != "cat" or not y.batched:
        raise MethodError("E321", f"a denoiser's label is a category cat[K] per sample, got {y.describe()}",
                          "declare the label as data, e.g. `data x: real[1, 8, 8], y: cat[10] from digits()`")
    if declared.classes not in (y.classes, y.classes + 1):
        raise MethodError("E321", f"{eps.name} takes labels {declared.describe()}, but {obj} is given "
                          f"{y.describe()}", f"declare {eps.name}'s label as cat[{y.classes}], or "
                          f"cat[{y.classes + 1}] for a null class")
    if why and declared.classes != y.classes + 1:
        raise MethodError("E321", f"{why} needs a null class (\"no label\"), but {eps.name} takes only the "
                          f"{y.classes} classes of the label", f"declare {eps.name}'s label as "
                          f"cat[{y.classes + 1}]: class {y.classes} is the null class")
    return y.classes if why else None


@method("diffusion", "loss", "the simple noise-prediction loss of Ho et al. (2020), one number per sample; "
        "with a label y, its denoiser is conditional and `drop` is the probability of replacing y by the "
        "null class (label dropout for classifier-free guidance, Ho & Salimans 2022); with learned "
        "variances, the hybrid loss L_simple + vlb L_vlb (Nichol & Dhariwal 2021, vlb = lambda = 0.001)")
def diffusion_loss(diffusion: ObjectType, eps: NetType, y: TensorType | None = None, drop: Drop = 0.0,
                   vlb: NonNegative | None = None) -> MethodUse:
    labels = labelled(diffusion, eps, y, drop)
    if vlb is not None and not diffusion.learned:
        raise MethodError("E221", f"vlb weights the bound's term that trains learned variances, but "
                          f"{diffusion.name}'s variances are fixed",
                          f"learn them, Gaussian(..., variance=learned), or write {diffusion.name}.loss({eps.name})")
    hybrid = ", vlb=%r" % (0.001 if vlb is None else vlb) if diffusion.learned else ""
    return MethodUse(out=SCALAR, contexts=("loss",), code="{obj}.loss(%s%s)" % (labels, hybrid))


def labelled(diffusion: ObjectType, eps: NetType, y: TensorType | None, drop: float) -> str:
    """The arguments a training loss passes on: the denoiser, the data and, for a conditional denoiser,
    the label with its dropout to the null class (refused when the null class would go untrained)."""
    null = null_class(diffusion, eps, y, f"label dropout (drop={drop:g})" if drop > 0 else "")
    if y is None:
        return "{0}, {data}"
    if null is None and net_label(eps).classes == y.classes + 1:  # guidance would use an untrained null class
        raise MethodError("E321", f"{eps.name} has a null class (label {y.classes} of "
                          f"{net_label(eps).describe()}) that this loss never trains",
                          f"drop the label to it some of the time, e.g. {diffusion.name}.loss({eps.name}, y, "
                          f"drop=0.1), or declare {eps.name}'s label as {y.describe()}")
    dropout = f", drop={drop!r}, null={null}" if null is not None else ""
    return "{0}, {data}, label={1}%s" % dropout


@method("diffusion", "vlb", "the variational bound itself as the loss (L_vlb, Nichol & Dhariwal 2021): per "
        "sample, one step's term L_t divided by the probability p_t of drawing t and by the number of values, an "
        "unbiased estimate of the bound less its constant L_T, in nats per value; its gradient trains the noise "
        "prediction and the learned variances alike (fixed variances: the mean alone). importance=true (the "
        "default) draws t with p_t proportional to sqrt(E[L_t^2]) over the last 10 values of each L_t (0.1% "
        "of p uniform), uniform until every step has 10; importance=false draws t uniformly. y and drop as in loss",
        refused={"vlb": "{obj}.vlb trains on the bound alone; the hybrid loss L_simple + lambda L_vlb is "
                        "{obj}.loss(eps, vlb=lambda)",
                 "schedule_sampler": "importance=true (the default) draws the steps by the loss's second "
                                     "moment, importance=false uniformly"})
def diffusion_vlb(diffusion: ObjectType, eps: NetType, y: TensorType | None = None, drop: Drop = 0.0,
                  importance: bool = True) -> MethodUse:
    return MethodUse(out=SCALAR, contexts=("loss",), code="{obj}.vlb(%s, importance=%r)" % (
        labelled(diffusion, eps, y, drop), importance))


@method("diffusion", "reverse", "samples by the reverse process, from noise to data: DDPM's ancestral "
        "chain over all steps, or DDIM (Song et al. 2021) when `steps` or `eta` is given (eta defaults to 0, "
        "deterministic); with a label y, guidance w > 0 is classifier-free guidance: "
        "(1 + w) eps(x_t, t, y) - w eps(x_t, t, null)")
def reverse(diffusion: ObjectType, eps: NetType, y: TensorType | None = None, guidance: NonNegative = 0.0,
            steps: Count | None = None, eta: NonNegative | None = None) -> MethodUse:
    null = null_class(diffusion, eps, y, f"guidance={guidance:g}" if guidance > 0 else "")
    total = diffusion.steps
    if steps is not None and total is not None and steps > total:
        raise MethodError("E328", f"{diffusion.name}.reverse takes at most the {total} steps of its process, "
                          f"got steps={steps}", f"write steps={total} or fewer")
    net = "{0}" if y is None else "{obj}.conditioned({0}, {1}, guidance=%r, null=%d)" % (guidance, null or 0)
    if steps is None and eta is None:
        code = "{obj}.reverse(%s, {n}, {shape}, self.device)" % net
    else:
        code = "{obj}.ddim(%s, {n}, {shape}, self.device, steps=%d, eta=%r)" % (
            net, steps if steps is not None else total or 0, eta or 0.0)
    return MethodUse(out=diffusion.value, contexts=("sample",), code=code)
