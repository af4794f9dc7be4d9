"""`log_weights(batch, k)` of a model with a hierarchy of latents (`latent z1 ~ p(z1 | z2)`, or an
encoder given another latent, `q(z2 | z1)`): the log importance weights of k joint draws of the
latents from their encoders, shape [k, batch]; their log-mean-exp is the IWAE bound.

    log w = log p(x | ...) + sum over encoded latents z of [log p(z | parents) - log q(z | ...)]

A latent without an encoder is drawn from its prior, which is then its proposal: its two terms
cancel and are left out. The weights are written as the argument of a `logmeanexp` would be
(gendsl/codegen/draws.py), with `k` the method's argument.
"""

from __future__ import annotations

from gendsl.codegen.draws import DrawsWriter
from gendsl.codegen.methods import MethodWriter, ModelInfo
from gendsl.graph import ir
from gendsl.graph.ir import DensityTerm
from gendsl.types import SCALAR


def hierarchical(info: ModelInfo) -> bool:
    """Does the model have a latent whose prior or encoder is given another latent?"""
    latents = [(k, d["data"]) for k, d in info.graph.nodes(data=True) if d["data"].kind == "latent"]
    given_latent = any(info.node(n.encoder).term is not None and any(
        info.node(g).kind == "latent" for g in info.node(n.encoder).term.given) for _, n in latents if n.encoder)
    return given_latent or any(n.prior_factor for _, n in latents)


def hierarchical_weights(info: ModelInfo) -> tuple[str, list[str]] | None:
    """(data variable, method body) of log_weights for a hierarchical model, or None when the model
    is not one or has not exactly one factor of data given latents."""
    if not hierarchical(info):
        return None
    nodes = [(k, d["data"]) for k, d in info.graph.nodes(data=True)]
    observed = [(k, n) for k, n in nodes if n.kind == "factor" and n.role in ("decoder", "observe")
                and info.node(n.term.vars[0]).kind == "data"
                and any(info.node(g).kind == "latent" for g in n.term.given)]
    if len(observed) != 1:
        return None
    key, factor = observed[0]
    span = factor.span
    total: ir.Expr = _log(span, factor.term, "factor", key)
    for name, latent in nodes:
        if latent.kind != "latent" or not latent.encoder:
            continue
        prior = _log(span, info.node(latent.prior_factor).term, "factor", latent.prior_factor) \
            if latent.prior_factor else _log(span, DensityTerm(density="p", vars=(name,)), "prior", name)
        proposal = _log(span, info.node(latent.encoder).term, "factor", latent.encoder)
        total = ir.Binary(span=span, type=SCALAR, op="+", left=total, right=prior)
        total = ir.Binary(span=span, type=SCALAR, op="-", left=total, right=proposal)
    outer = MethodWriter(info, "loss")
    inner = DrawsWriter(outer, "k")  # k is the method's argument
    weights = inner.hoist(inner.code(total), "log_w")
    return factor.term.vars[0], outer.lines + [f"return {weights}.view(k, -1)"]


def _log(span, term: DensityTerm, how: str, source: str) -> ir.LogDensity:
    """`log TERM` as a typed expression (one number per sample)."""
    return ir.LogDensity(span=span, type=SCALAR, term=term, how=how, source=source)
