"""Density terms in losses and samples: `log p(x | z)`, `kl(q(z | x), p(z))`, `sample x ~ p(x)`.

A term is resolved to what defines it: a factor (encoder, decoder, observe, autoregressive), a
latent's prior, a flow, or a marginal summed exactly over discrete latents. A marginal over a
continuous latent is intractable and reported as such, with the ELBO as the way out.
"""

from __future__ import annotations

from gendsl import ast
from gendsl.graph import ir
from gendsl.graph.ir import DensityTerm
from gendsl.graph.passes.expressions import Binding, ExprTyper, Scope, compatible
from gendsl.types import SCALAR, UNKNOWN, NetType, TensorType


class DensityResolver:
    """Knows the model's factors, priors and flows; used by ExprTyper for density terms."""

    def __init__(self, typer: ExprTyper, factors: dict[str, DensityTerm], factor_roles: dict[str, str],
                 latents: dict[str, TensorType], encoders: dict[str, str], flows: dict[str, tuple[str, str]],
                 diffusions: dict[str, str]):
        self.typer = typer
        self.factors = factors            # factor key -> term
        self.factor_roles = factor_roles  # factor key -> encoder/decoder/observe/autoregressive
        self.latents = latents            # latent name -> type
        self.encoders = encoders          # latent name -> encoder factor key
        self.flows = flows                # flow name -> (data var, latent)
        self.diffusions = diffusions      # diffusion name -> data var

    def report(self, code, message, span, **kw):
        return self.typer.report(code, message, span, **kw)

    # ---- terms ----
    def term(self, call: ast.Call) -> DensityTerm | None:
        names = []
        for arg in (*call.args, *call.given):
            if not isinstance(arg, ast.Name) or arg.id not in self.typer.model \
                    or self.typer.model[arg.id].kind not in ("data", "latent"):
                self.report("E214", "a density term takes variable names, e.g. p(x | z)", arg.span,
                            label="not a data or latent variable")
                return None
            names.append(arg.id)
        if not call.args:
            self.report("E214", "a density term needs at least one variable, e.g. p(x)", call.span)
            return None
        return DensityTerm(density=call.func.id, vars=tuple(names[:len(call.args)]),
                           given=tuple(names[len(call.args):]))

    def resolve(self, term: DensityTerm, span) -> tuple[str, str] | None:
        """(how, source) for a term, or None after reporting why it has no definition."""
        for key, defined in self.factors.items():
            if defined.density == term.density and defined.vars == term.vars \
                    and set(defined.given) == set(term.given):
                return "factor", key
        if term.density == "p" and not term.given and len(term.vars) == 1:
            var = term.vars[0]
            if var in self.latents:
                return "prior", var
            for name, (data_var, _) in self.flows.items():
                if data_var == var:
                    return "flow", name
            marginal = self.marginal(var, span)
            if marginal is not None:
                return marginal
            if marginal is None and any(d.vars == (var,) for d in self.factors.values()):
                return None
        known = ", ".join(t.describe() for t in self.factors.values()) or "none"
        self.report("E215", f"nothing in the model defines {term.describe()}", span,
                    label="no such factor",
                    hint=f"factors of this model: {known}" + ("; priors are written p(z)" if self.latents else ""))
        return None

    def marginal(self, var: str, span) -> tuple[str, str] | None:
        """p(x) summed over the latents of its factor: exact only when they are all discrete."""
        for key, defined in self.factors.items():
            if defined.density != "p" or defined.vars != (var,):
                continue
            continuous = [g for g in defined.given if g in self.latents and self.latents[g].kind != "cat"]
            if continuous:
                z = continuous[0]
                self.report("E301", f"log p({var}) is intractable here: the latent '{z}' is continuous",
                            span, label="cannot sum out a continuous latent",
                            hint=f"train with the ELBO, -log p({var} | {z}) + kl(q({z} | {var}), p({z})), "
                                 "and evaluate with `iwae`")
                return None
            if any(g not in self.latents for g in defined.given):
                return None
            return "marginal_enumerate", key
        return None

    # ---- uses ----
    def log_density(self, e: ast.Unary, call: ast.Call, scope: Scope) -> ir.Expr:
        if scope.context != "loss":
            return self.report("E209", f"log {call.func.id}(...) can only be used in losses", e.span)
        term = self.term(call)
        resolved = self.resolve(term, call.span) if term else None
        if resolved is None:
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        how, source = resolved
        return ir.LogDensity(span=e.span, type=SCALAR, term=term, how=how, source=source)

    def kl(self, e: ast.Call, scope: Scope) -> ir.Expr:
        if len(e.args) != 2 or e.kwargs:
            return self.report("E204", "kl takes two density terms: kl(q(z | x), p(z))", e.span)
        terms = []
        for arg in e.args:
            if not (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name)
                    and self.typer.lookup(arg.func.id, scope) is not None
                    and self.typer.lookup(arg.func.id, scope).kind == "density"):
                return self.report("E214", "kl compares two density terms, e.g. kl(q(z | x), p(z))", arg.span)
            term = self.term(arg)
            resolved = self.resolve(term, arg.span) if term else None
            if resolved is None:
                return ir.Const(span=e.span, type=UNKNOWN, value=None)
            terms.append((term, resolved[1]))
        (q, q_source), (p, p_source) = terms
        if q.vars != p.vars:
            return self.report("E232", f"kl compares distributions of different variables: "
                               f"{q.describe()} and {p.describe()}", e.span,
                               hint="both terms must be over the same latent, e.g. kl(q(z | x), p(z))")
        return ir.KL(span=e.span, type=SCALAR, q=q, p=p, q_source=q_source, p_source=p_source)

    def draw(self, decl: ast.SampleDecl, scope: Scope) -> ir.Expr:
        call = decl.value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and self.typer.lookup(call.func.id, scope) is not None
                and self.typer.lookup(call.func.id, scope).kind == "density"):
            return self.report("E231", "`sample x ~ ...` draws from a density term such as p(x) or p(x | z)",
                               decl.value.span, hint="use `sample x = expression` for a deterministic sample")
        term = self.term(call)
        ancestral = term is not None and not term.given and any(
            d.density == term.density and d.vars == term.vars for d in self.factors.values())
        resolved = ("factor", "") if ancestral else (self.resolve(term, call.span) if term else None)
        if resolved is None:
            return ir.Const(span=call.span, type=UNKNOWN, value=None)
        if decl.name.name not in term.vars:
            return self.report("E231", f"`sample {decl.name.name} ~ {term.describe()}` draws "
                               f"{', '.join(term.vars)}, not {decl.name.name}", decl.name.span)
        var_type = self.typer.model[term.vars[0]].type
        return ir.DrawDensity(span=call.span, type=var_type, term=term)

    def diffusion_method(self, e: ast.Call, attr: ast.Attr, binding: Binding, args: list, scope: Scope):
        name = attr.target.id
        wanted = "loss" if attr.name == "loss" else "sample"
        if scope.context != wanted:
            return self.report("E212", f"{name}.{attr.name}(...) belongs in a {wanted}", e.span,
                               hint=f"`loss simple = {name}.loss(eps)` and `sample x = {name}.reverse(eps)`")
        if len(args) != 1:
            return self.report("E204", f"{name}.{attr.name} takes the denoiser network", e.span,
                               hint=f"write {name}.{attr.name}(eps)")
        net = args[0].type
        x_type = binding.type.value
        if net is UNKNOWN or x_type is None:
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        if not (isinstance(args[0], ir.Ref) and isinstance(net, NetType)):
            return self.report("E321", f"{name}.{attr.name} takes a denoiser network", args[0].span,
                               hint="declare `denoiser eps(x_t: real[...], t: step) -> real[...] { ... }`")
        step = TensorType(kind="step")
        if net.role == "denoiser":
            pass  # its signature is checked once, at the declaration (E310)
        elif len(net.inputs) != 2 or not compatible(x_type, net.inputs[0]) or net.inputs[1] != step \
                or not compatible(net.output, x_type):
            return self.report("E321", f"{net.name} must map (x_t: {x_type.describe()}, t: step) to "
                               f"{x_type.describe()}, but it is {net.describe()}", args[0].span,
                               hint=f"declare `denoiser {net.name}(x_t: {x_type.describe()}, t: step) -> "
                                    f"{x_type.describe()}`")
        out = SCALAR if attr.name == "loss" else x_type
        return ir.Method(span=e.span, type=out, obj=name, kind="diffusion", method=attr.name,
                         args=tuple(args))
