"""Distributions of the registry drawn for a value: likelihoods, posteriors and priors."""

from __future__ import annotations

from gendsl.library.distributions import DISTRIBUTIONS
from gendsl.library.signature import EntryError, parameters
from gendsl.types import TensorType
from tests.strategies.builder import Builder, Value
from tests.strategies.gen_text import real
from tests.strategies.picker import Picker
from tests.strategies.pipelines import adapt


# ---- distributions ----------------------------------------------------------------------------

def positive(pick: Picker, b: Builder, source: Value, target: TensorType) -> str:
    """A positive scale: a constant, or a head of `source` made positive."""
    if pick.chance(30):
        return b.number(pick.choice([0.1, 0.5, 1.0]), "sd")
    head = adapt(pick, b, source, target)
    squash = pick.choice(["softplus", "exp"])
    b.tag(f"scale:{squash}")
    return f"{head.text} |> {squash}" if squash == "softplus" or pick.chance(50) else f"exp({head.text})"


def event_kind(name: str) -> str:
    """The kind of value a distribution of the registry draws, asked from its rule: with every
    parameter a real vector, else with the first one only (`logits` of Bernoulli/Categorical)."""
    entry = DISTRIBUTIONS[name]
    if entry.support.chain:
        return "chain"  # a latent sequence cat[K, T] (Markov): not a family of one value per sample
    if entry.support.point_mass:
        return "point_mass"  # Nearest: an encoder over a codebook (tests/unit/test_vqvae.py), not a likelihood
    params = parameters(entry.rule, entry.skip)
    for given in (params, params[:1]):
        try:
            return entry.rule(**{p.name: real(3) for p in given}).event.kind
        except (EntryError, TypeError):
            continue
    raise AssertionError(f"cannot call the rule of {name}")


def families(kind: str) -> list[str]:
    """The registry's distributions over values of `kind` (real, bin or cat)."""
    return sorted(name for name in DISTRIBUTIONS if event_kind(name) == kind)


def real_family(pick: Picker, b: Builder, source: Value, var: TensorType, weights: dict[str, int],
                margin: str = "1") -> str:
    """A draw from a real-valued family of the registry: its first parameter a head of `source`,
    its second positive (a scale), or above the first (`high` of a range)."""
    family = pick.weighted({name: weights.get(name, 1) for name in families("real")})
    first, second = [p.name for p in parameters(DISTRIBUTIONS[family].rule, DISTRIBUTIONS[family].skip)][:2]
    loc = adapt(pick, b, source, var.as_real())
    b.tag(f"dist:{family}")
    if second == "high":
        width = adapt(pick, b, source, var).text
        return f"{family}({first} = {loc.text}, {second} = {loc.atom} + softplus({width}) + {margin})"
    scale = positive(pick, b, source, var.as_real())
    if pick.chance(50):
        return f"{family}({first} = {loc.text}, {second} = {scale})"
    return f"{family}({loc.text}, {scale})"


def draw_distribution(pick: Picker, b: Builder, var: TensorType, source: Value, unit: bool) -> str:
    """`Family(args)` for a draw of a value of type `var`, its parameters read from `source`."""
    if var.kind in ("cat", "bin"):
        family = pick.choice(families(var.kind))
        size = real(var.classes) if var.kind == "cat" else var.as_real()
        logits = adapt(pick, b, source, size)
        b.tag(f"dist:{family}")
        squash = "softmax" if var.kind == "cat" else "sigmoid"
        return f"{family}(logits = {logits.text})" if pick.chance(70) else f"{family}(probs = {squash}({logits.text}))"
    return real_family(pick, b, source, var, {"Normal": 6, "Laplace": 2, "Uniform": 1})


def prior(pick: Picker, b: Builder, var: TensorType, uniform: int = 2) -> str:
    """The prior of a latent of type `var`. An encoder's Normal or Laplace posterior has an
    infinite KL to a Uniform prior (a NaN loss at the first round), so models with encoders draw
    Uniform priors rarely (`uniform` is its weight out of 12)."""
    if var.kind == "cat":
        logits = b.tensor((var.classes,), prefix="pi")
        b.tag("dist:Categorical", "prior:categorical")
        if b.known and pick.chance(30):
            b.tag("known:scalar_categorical")
            return "Categorical(logits = 0)"
        return f"Categorical(logits = {logits})" if pick.chance(70) else f"Categorical(probs = softmax({logits}))"
    if var.kind == "bin":
        b.tag("dist:Bernoulli", "prior:bernoulli")
        form = pick.choice(["zero", "half", "tensor"])
        if form == "tensor":
            return f"Bernoulli(logits = {b.tensor(var.shape, prefix='pl')})"
        return "Bernoulli(logits = 0)" if form == "zero" else "Bernoulli(probs = 0.5)"
    family = pick.weighted({"Normal": 6, "Laplace": 2, "Uniform": uniform, "learned": 2})
    b.tag(f"prior:{family}")
    if family == "learned":
        mu, log_s = b.tensor(var.shape, "mu"), b.tensor(var.shape, "ls")
        b.tag("dist:Normal")
        return f"Normal({mu}, exp({log_s}))"
    b.tag(f"dist:{family}")
    if family == "Uniform":
        return "Uniform(-1, 1)" if pick.chance(70) else "Uniform(low = 0, high = 1)"
    return f"{family}(0, 1)" if pick.chance(60) else f"{family}(loc = 0, scale = {b.number(1.0, 's')})"
