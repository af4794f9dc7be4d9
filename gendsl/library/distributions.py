"""Distributions, all emitted as torch.distributions objects.

An entry declares its `support`: the kind of value one draw is, and the kinds of data it can
score (the checker holds data and latents to it, E226). Its rule takes the parameter types and
returns the distribution's `Family`: the type of one draw (scalar constants broadcast later, to
the declared type of the variable drawn), the constructor `code`, and whether samples carry
gradients (`reparameterized`: rsample).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from gendsl.library.entries import Entry, Registry, require
from gendsl.types import NumberType, TensorType, Type, broadcast_shapes

DISTRIBUTIONS = Registry("distribution")

Operand = TensorType | NumberType
Kind = Literal["real", "bin", "int", "cat", "step"]


@dataclass(frozen=True)
class Support:
    """What a distribution draws, and which kinds of data it gives a density to."""

    draws: Kind                       # the kind of one draw
    scores: tuple[Kind, ...]          # data kinds it can score: `log p(x)` of such data is a density
    notes: tuple[tuple[Kind, str], ...] = ()   # conditions the checker cannot see, per kind
    everywhere: bool = False          # a density at every real number (a flow's latent needs one)
    chain: bool = False               # draws a whole sequence cat[K, T] (Markov): T comes from the variable
    bounds: tuple[float, float] | None = None  # real data it scores must lie here (checked when loaded)
    point_mass: bool = False          # a draw that is a function of its parameters (Nearest): its rule types
    #                                   the whole draw, and no gradient is lost through it (zero a.e.)

    def can_score(self, kind: str) -> bool:
        return kind in self.scores

    def can_draw_into(self, kind: str) -> bool:
        """Can a variable of this kind hold its draws? A bin value is also a real one."""
        return kind == self.draws or (kind == "real" and self.draws == "bin")

    def describe(self) -> str:
        """`bin or real (values in [0, 1])`."""
        notes = dict(self.notes)
        return " or ".join(f"{k} ({notes[k]})" if k in notes else k for k in self.scores)


@dataclass(frozen=True)
class DistributionEntry(Entry):
    """A distribution's registry entry: an Entry that also declares its support."""

    support: Support = Support("real", ("real",))
    helpers: tuple[str, ...] = ()     # classes of gendsl/codegen/helpers/ its code calls


@dataclass(frozen=True)
class Family:
    event: TensorType          # the type of one draw; shape () (and classes 0) for scalar constants
    code: str                  # constructor over the keyword parameters: "D.Normal({loc}, {scale})"
    reparameterized: bool
    # the constructor of the values at one position (a feature, row or pixel) alone, over the
    # parameters at that position, where each position has its own: what an autoregressive sampler
    # draws from, reading each parameter from the whole distribution (torch keeps it by its name)
    position: str | None = None


def distribution(name: str, doc: str, support: Support, aliases: tuple[str, ...] = (),
                 helpers: tuple[str, ...] = ()):
    """Register a distribution family with its support (and the helpers its code calls)."""
    def decorate(rule):
        DISTRIBUTIONS.register(name, doc, skip=0, aliases=aliases)(rule)
        entry = DISTRIBUTIONS[name]
        DISTRIBUTIONS[name] = DistributionEntry(**{f.name: getattr(entry, f.name) for f in fields(entry)},
                                                support=support, helpers=helpers)
        return rule
    return decorate


def support_of(family: str) -> Support:
    """The support of a registered family."""
    return DISTRIBUTIONS[family].support


def families_for(kind: str, drawn: bool) -> list[str]:
    """Families whose values fit a variable of `kind`: drawn (a latent) or scored (data)."""
    return [name for name, entry in DISTRIBUTIONS.items()
            if (entry.support.can_draw_into(kind) if drawn else entry.support.can_score(kind))]


def _shape(x: Type) -> tuple[int, ...]:
    return x.shape if isinstance(x, TensorType) else ()


def _batched(*xs: Type) -> bool:
    return any(isinstance(x, TensorType) and x.batched for x in xs)


def _number(name: str, value: Operand, what: str) -> float | None:
    """A constant parameter's value (None for tensors); strings and booleans are refused."""
    if not isinstance(value, NumberType):
        return None
    require(value.kind in ("int", "float"), f"{name}'s {what} must be a number or a real tensor, "
            f"got {value.describe()}", f"write e.g. {name}({what} = 0)")
    return float(value.value)


def _not_label(name: str, value: Operand, what: str) -> None:
    require(not (isinstance(value, TensorType) and value.kind == "cat"),
            f"{name}'s {what} cannot be a category label", "turn labels into vectors first: `onehot(y)`")


def location_scale(name: str, first: Operand, a: str, second: Operand, b: str) -> Family:
    """Location-scale families: the event shape is the broadcast of the two parameters."""
    shape = broadcast_shapes(_shape(first), _shape(second))
    require(shape is not None, f"{name}: {a} {first.describe()} and {b} {second.describe()} "
            "do not broadcast")
    for value, what in ((first, a), (second, b)):
        _not_label(name, value, what)
        _number(name, value, what)
    code = f"D.{name}({{{a}}}, {{{b}}})"
    return Family(event=TensorType(shape=shape, batched=_batched(first, second)), code=code, reparameterized=True,
                  position=code)


def _positive_scale(name: str, scale: Operand) -> None:
    value = _number(name, scale, "scale")
    require(value is None or value > 0, f"{name}'s scale must be > 0, got {value}",
            "a scale is a standard deviation (or spread): use a positive number, or softplus(...) "
            "of a network's output")


REAL = Support("real", ("real", "bin"), everywhere=True)


@distribution("Normal", "Gaussian with mean loc and standard deviation scale", REAL, aliases=("Gaussian", "normal"))
def normal(loc: Operand, scale: Operand) -> Family:
    _positive_scale("Normal", scale)
    return location_scale("Normal", loc, "loc", scale, "scale")


@distribution("Laplace", "Laplace with location loc and scale", REAL)
def laplace(loc: Operand, scale: Operand) -> Family:
    _positive_scale("Laplace", scale)
    return location_scale("Laplace", loc, "loc", scale, "scale")


@distribution("Uniform", "uniform on [low, high)",
              Support("real", ("real", "bin"), notes=(("real", "values in [low, high)"),
                                                      ("bin", "0 and 1 in [low, high)"))))
def uniform(low: Operand, high: Operand) -> Family:
    family = location_scale("Uniform", low, "low", high, "high")
    lo, hi = _number("Uniform", low, "low"), _number("Uniform", high, "high")
    require(lo is None or hi is None or lo < hi, f"Uniform needs low < high, got [{lo}, {hi})")
    return family


def _one_of(name: str, logits: Type | None, probs: Type | None) -> tuple[str, Type]:
    require((logits is None) != (probs is None), f"{name} takes exactly one of logits= or probs=",
            f"write {name}(logits = ...)")
    return ("logits", logits) if logits is not None else ("probs", probs)


def _probability(name: str, key: str, value: Operand) -> None:
    number = _number(name, value, key)
    if key == "probs":
        require(number is None or 0 <= number <= 1, f"{name}'s probs must be in [0, 1], got {number}",
                "or give logits = ... (any real number)")


@distribution("Bernoulli", "binary values with probability sigmoid(logits) (or probs)",
              Support("bin", ("bin", "real"), notes=(("real", "values in [0, 1]"),), bounds=(0.0, 1.0)),
              aliases=("bernoulli",))
def bernoulli(logits: Operand | None = None, probs: Operand | None = None) -> Family:
    key, value = _one_of("Bernoulli", logits, probs)
    _not_label("Bernoulli", value, key)
    _probability("Bernoulli", key, value)
    code = f"D.Bernoulli({key}={{{key}}})"
    return Family(event=TensorType(kind="bin", shape=_shape(value), batched=_batched(value)), code=code,
                  reparameterized=False, position=code)


@distribution("Categorical", "one of K categories with probabilities softmax(logits) (or probs)",
              Support("cat", ("cat",)), aliases=("categorical",))
def categorical(logits: Operand | None = None, probs: Operand | None = None) -> Family:
    key, value = _one_of("Categorical", logits, probs)
    _not_label("Categorical", value, key)
    _probability("Categorical", key, value)
    if isinstance(value, NumberType):  # every category alike: K comes from the variable's type
        return Family(event=TensorType(kind="cat", classes=0, batched=False),
                      code=f"D.Categorical({key}={{{key}}})", reparameterized=False)
    shape = _shape(value)
    require(len(shape) >= 1, f"Categorical's {key} need a last dimension of K categories, "
            f"got {value.describe()}", f"give a vector of K {key} (e.g. a tensor real[K]), or one number "
            "for K equal categories")
    position = code = f"D.Categorical({key}={{{key}}})"
    if len(shape) > 1:  # a sequence of labels: one density over the whole sequence
        code = f"D.Independent({code}, {len(shape) - 1})"
    return Family(event=TensorType(kind="cat", shape=shape[:-1], classes=shape[-1],
                                   batched=_batched(value)), code=code, reparameterized=False, position=position)


@distribution("Markov", "a chain of labels cat[K, T]: z_1 from softmax(init), z_t from softmax(trans[z_(t-1)])",
              Support("cat", (), chain=True), aliases=("HMM", "MarkovChain", "markov"), helpers=("MarkovChain",))
def markov(init: TensorType, trans: TensorType) -> Family:
    for value, what, example in ((init, "init", "real[K]"), (trans, "trans", "real[K, K]")):
        require(isinstance(value, TensorType) and value.kind == "real" and not value.batched,
                f"Markov's {what} must be a shared tensor {example} of logits, got {value.describe()}",
                f"declare `tensor {what}_logits: {example} = zeros` and write Markov({what} = {what}_logits)")
    k = init.shape[0] if init.rank == 1 else 0
    require(k > 0, f"Markov's init must be a vector real[K] of K logits, got {init.describe()}",
            "one logit per state: `tensor pi: real[K] = zeros`")
    require(trans.shape == (k, k), f"Markov's trans must be real[{k}, {k}] (from each of the {k} states of init, "
            f"logits of the next), got {trans.describe()}", f"declare `tensor A: real[{k}, {k}] = zeros`")
    # {length}: the chain's T, filled from the declared type of the latent it draws
    return Family(event=TensorType(kind="cat", classes=k, batched=False),
                  code="MarkovChain({init}, {trans}, length={length})", reparameterized=False)


@distribution("Nearest", "the index of the codebook row nearest (L2) to each vector, with probability 1: "
              "VQ-VAE's encoder q(k | x) (van den Oord et al. 2017)", Support("cat", (), point_mass=True),
              aliases=("VectorQuantize", "VQ", "nearest"), helpers=("nearest_logits",))
def nearest(vectors: TensorType, codebook: TensorType) -> Family:
    require(isinstance(codebook, TensorType) and codebook.kind == "real" and codebook.rank == 2
            and not codebook.batched, f"Nearest's codebook must be a shared tensor real[K, D], got "
            f"{codebook.describe()}", "declare `tensor codebook: real[K, D] = uniform(low=-0.1, high=0.1)`")
    k, width = codebook.shape
    require(isinstance(vectors, TensorType) and vectors.kind == "real" and vectors.rank >= 1
            and vectors.shape[-1] == width, f"Nearest's vectors must end in the codebook's width {width}, "
            f"got {vectors.describe()}", f"give the encoder's output as real[T, {width}] (T vectors of {width})")
    code = "D.Categorical(logits=nearest_logits({vectors}, {codebook}))"
    if vectors.rank > 1:  # a grid of indices: one density over the whole grid
        code = f"D.Independent({code}, {vectors.rank - 1})"
    return Family(event=TensorType(kind="cat", shape=vectors.shape[:-1], classes=k, batched=vectors.batched),
                  code=code, reparameterized=False)


# ---- fitting a distribution to the variable it models ----

@dataclass(frozen=True)
class Misfit:
    """Why a distribution cannot model a variable: an E226 diagnostic, at `param` if one is at fault."""

    message: str
    hint: str
    param: str = ""


def fit_event(family: str, params: dict[str, Type], declared: TensorType, var: str, *, drawn: bool,
              numbers_fill: bool, event: TensorType | None = None) -> TensorType | Misfit:
    """The type of one draw of `family` modelling `var: declared`, or why it cannot.

    `drawn`: the variable's values are drawn from it (a latent) rather than scored (data).
    `numbers_fill`: numbers become tensors of the full shape (a prior's buffers); elsewhere they
    stay numbers, so a tensor parameter must give the shape. Numbers broadcast to the declared
    type; a tensor broadcasts when its per-sample shape lines up with the variable's (a
    per-sample tensor needs as many dims: its first is the batch)."""
    support = support_of(family)
    kind = declared.kind
    if support.point_mass:
        return _fit_point_mass(family, event, declared, var, drawn)
    if support.chain or (drawn and kind == "cat" and declared.shape):
        return _fit_chain(family, params, declared, var, drawn)
    if drawn and not support.can_draw_into(kind):
        fits = [f for f in families_for(kind, drawn=True)  # chains: cat[K, T] only; point masses: encoders
                if not support_of(f).chain and not support_of(f).point_mass]
        return Misfit(f"{family} draws {support.draws} values, but '{var}' is {declared.describe()}",
                      f"a {kind} latent takes {_listing(fits)}" if fits else f"no distribution draws {kind} values")
    if not drawn and not support.can_score(kind):
        fits = [f"{name} ({dict(support_of(name).notes)[kind]})" if kind in dict(support_of(name).notes) else name
                for name in families_for(kind, drawn=False)]
        return Misfit(f"{family} models {support.describe()} data, but '{var}' is {declared.describe()}",
                      f"{kind} data take {_listing(fits)}" if fits else
                      f"no distribution models {kind} data: declare '{var}' as real[...]")
    if not numbers_fill and not any(isinstance(v, TensorType) for v in params.values()):
        return Misfit(f"the {family} of '{var}' has only numbers as parameters: it depends on nothing the "
                      "model computes or learns",
                      "compute a parameter from the block's inputs (e.g. loc = z |> Linear(...)), or use a "
                      "tensor (e.g. `tensor mu: real[...] = zeros`); a fixed distribution belongs in a "
                      "latent's prior, where numbers broadcast to the declared type")
    wanted = (*declared.shape, declared.classes) if support.draws == "cat" else declared.shape
    given = []
    for name, value in params.items():
        if isinstance(value, TensorType):
            misfit = _lines_up(family, name, value, wanted, declared, var)
            if misfit is not None:
                return misfit
            given.append(value.shape)
        elif numbers_fill:
            given.append(wanted)
    shape: tuple[int, ...] | None = ()
    for s in given:
        shape = broadcast_shapes(shape, s)
    if shape != wanted:
        return _too_small(family, params, wanted, declared, var, shape)
    return TensorType(kind=support.draws, shape=declared.shape,
                      classes=declared.classes if support.draws == "cat" else 0, batched=_batched(*params.values()))


def _fit_point_mass(family: str, event: TensorType | None, declared: TensorType, var: str, drawn: bool
                    ) -> TensorType | Misfit:
    """A point mass draws a latent (data would score -inf almost everywhere); its rule types the
    whole draw (Nearest: one index per vector), and it fits a variable of exactly that type."""
    if not drawn:
        return Misfit(f"{family} is a point mass: it draws a latent (a VQ-VAE's `encoder q(k | x)`) and "
                      f"gives no density to data such as '{var}'",
                      f"model '{var}' with Categorical(logits = ...)")
    if event is not None and (event.kind, event.shape, event.classes) != (declared.kind, declared.shape,
                                                                          declared.classes):
        return Misfit(f"{family} draws {event.describe()}, but '{var}' is {declared.describe()}",
                      f"declare '{var}' as {event.as_batched(False).describe()}, or change the codebook "
                      "(K rows) or the vectors (one index per vector)")
    return declared.as_batched(event.batched if event is not None else True)


def _fit_chain(family: str, params: dict[str, Type], declared: TensorType, var: str, drawn: bool
               ) -> TensorType | Misfit:
    """A chain family draws a latent sequence cat[K, T] with as many states as its logits; a latent
    sequence is drawn by a chain (its steps depend on each other: summed out by the forward algorithm)."""
    example = f"`latent {var if drawn else 'z'}: cat[K, T] ~ Markov(init = pi, trans = A)`"
    if not support_of(family).chain:
        return Misfit(f"'{var}' is a sequence of labels {declared.describe()}, which {family} does not draw",
                      f"a latent sequence is a Markov chain: {example}")
    if not drawn:
        return Misfit(f"{family} is the prior of a latent chain, not a distribution of data",
                      f"draw the chain as a latent, {example}, and observe each step given it: "
                      "`observe x ~ Categorical(logits = E[z])`")
    if declared.kind != "cat" or len(declared.shape) != 1:
        return Misfit(f"{family} draws a sequence of labels, but '{var}' is {declared.describe()}",
                      f"declare '{var}' as cat[K, T]: one of K states at each of T steps")
    states = params["init"].shape[0] if isinstance(params.get("init"), TensorType) and params["init"].shape else 0
    if states != declared.classes:
        return Misfit(f"{family} has {states} states, but '{var}' is {declared.describe()}",
                      f"give init real[{declared.classes}] and trans real[{declared.classes}, {declared.classes}], "
                      f"or declare '{var}' as cat[{states}, {declared.shape[0]}]", "init")
    return declared.as_batched(False)


def _lines_up(family: str, name: str, value: TensorType, wanted: tuple[int, ...], declared: TensorType,
              var: str) -> Misfit | None:
    """A tensor parameter must broadcast to the wanted per-sample shape; a per-sample (batched)
    one must also have as many dims, or its batch dimension would meet the variable's first."""
    if broadcast_shapes(value.shape, wanted) == tuple(wanted) and (not value.batched or value.rank == len(wanted)):
        return None
    what = f"{value.describe()} per sample" if value.batched else value.describe()
    if declared.kind == "cat":
        return Misfit(f"{family}'s {name} is {what}, but '{var}' is {declared.describe()}: it needs "
                      f"{declared.classes} {name} per sample", f"the {name}' last dimension is the number of "
                      f"categories: give real[{declared.classes}] (or one number for equal categories)", name)
    target = TensorType(shape=wanted).describe()
    if broadcast_shapes(value.shape, wanted) == tuple(wanted):  # a per-sample value with fewer dims
        return Misfit(f"{family}'s {name} is {what}, which does not line up with '{var}': {declared.describe()}",
                      f"a per-sample {name} needs as many dims as '{var}' (its first is the batch): give it "
                      f"{target}, or sizes 1 to share values (e.g. real[{', '.join('1' for _ in wanted)}])", name)
    return Misfit(f"{family}'s {name} is {what}, which does not broadcast to '{var}': {declared.describe()}",
                  f"give {name} the shape {target}, or a number (numbers broadcast to the variable's shape)", name)


def _too_small(family: str, params: dict[str, Type], wanted: tuple[int, ...], declared: TensorType, var: str,
               shape: tuple[int, ...] | None) -> Misfit:
    """The parameters broadcast, but to less than the variable's shape, and nothing fills the rest."""
    got = TensorType(shape=shape or ()).describe()
    target = TensorType(shape=wanted).describe()
    computed = any(isinstance(v, TensorType) and v.batched for v in params.values())
    example = f" (e.g. end its network with Linear({wanted[0]}))" if computed and len(wanted) == 1 else ""
    return Misfit(f"the parameters of {family} give {got} per sample, but '{var}' is {declared.describe()}",
                  f"give at least one parameter the shape {target}{example}; the others broadcast to it")


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
