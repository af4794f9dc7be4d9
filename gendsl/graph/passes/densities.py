"""Density terms in losses and samples: `log p(x | z)`, `kl(q(z | x), p(z))`, `sample x ~ p(x)`,
and the methods of flows and diffusions (`f.inverse(z)`, `q.loss(eps)`, `q.reverse(eps)`).

A term is resolved to what defines it: a factor (encoder, decoder, observe, autoregressive), a
latent's prior, a flow, or a marginal summed exactly over discrete latents. A marginal over a
continuous latent is intractable and reported as such, with the ELBO as the way out.
"""

from __future__ import annotations

from gendsl import ast
from gendsl.graph import ir
from gendsl.graph.ir import DensityTerm
from gendsl.graph.passes.expressions import ExprTyper, Scope, option_span
from gendsl.library.distributions import DISTRIBUTIONS, support_of
from gendsl.library.methods import MethodUse, methods_of
from gendsl.library.signature import (EntryError, arguments_by_name, bind, call_rule, describe_signature,
                                     parameters)
from gendsl.types import SCALAR, UNKNOWN, TensorType


class DensityResolver:
    """Knows the model's factors, priors and flows; used by ExprTyper for density terms."""

    def __init__(self, typer: ExprTyper, factors: dict[str, DensityTerm], factor_roles: dict[str, str],
                 latents: dict[str, TensorType], encoders: dict[str, str], flows: dict[str, tuple[str, tuple[str, ...]]],
                 diffusions: dict[str, str], families: dict[tuple[str, str], str] | None = None,
                 conditional: dict[str, DensityTerm] | None = None, programs: dict | None = None):
        self.typer = typer
        self.factors = factors            # factor key -> term
        self.factor_roles = factor_roles  # factor key -> encoder/decoder/observe/autoregressive
        self.latents = latents            # latent name -> type
        self.encoders = encoders          # latent name -> encoder factor key
        self.flows = flows                # flow name -> (data var, what it is given)
        self.diffusions = diffusions      # diffusion name -> data var
        self.families = families or {}    # (factor or latent, variable) -> distribution family
        self.conditional = conditional or {}  # latent -> the term of its prior p(z1 | z2), in a hierarchy
        self.programs = programs or {}    # factor key -> its typed program (an observe's distribution)

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
        flow = self.flow(term, span)
        if flow is not None:
            return flow or None
        if term.density == "p" and not term.given and len(term.vars) == 1:
            var = term.vars[0]
            if var in self.conditional:
                prior = self.conditional[var].describe()
                self.report("E301", f"log p({var}) is intractable here: the prior of '{var}' is {prior}",
                            span, label="a marginal over its parents", hint=f"use the factor itself, log {prior}, "
                            "with its given latents drawn as in any loss")
                return None
            if var in self.latents:
                return "prior", var
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

    def flow(self, term: DensityTerm, span) -> tuple[str, str] | tuple[()] | None:
        """("flow", name) for the density of a flow's data given what the flow is given; () after
        reporting a term over a flow's data with other conditions; None if no flow is over it."""
        if term.density != "p" or len(term.vars) != 1:
            return None
        for name, (data_var, given) in self.flows.items():
            if data_var != term.vars[0]:
                continue
            if set(given) == set(term.given):
                return "flow", name
            wanted = DensityTerm(density="p", vars=term.vars, given=given).describe()
            self.report("E215", f"flow {name} defines {wanted}, not {term.describe()}", span,
                        label="no such density", hint=f"write log {wanted}")
            return ()
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
            chains = [g for g in defined.given if self.is_chain(g) and self.latents[g].shape]
            if chains and not self.chain_observed_per_step(var, key, chains, span):
                return None
            return "marginal_enumerate", key
        return None

    def is_chain(self, latent: str) -> bool:
        family = self.families.get((latent, latent))
        return family in DISTRIBUTIONS and support_of(family).chain

    def chain_observed_per_step(self, var: str, key: str, chains: list[str], span) -> bool:
        """A chain z: cat[K, T] is summed out by the forward algorithm when x is observed step by step:
        x has T steps first, and each step's distribution depends on z only through z_t (E330)."""
        z = chains[0]
        steps = self.latents[z].shape[0]
        x = self.typer.model[var].type
        others = [g for g in self.factors[key].given if g != z]
        if others:
            self.report("E330", f"the observation of '{var}' uses the chain '{z}' and {', '.join(others)}: the forward "
                        "algorithm sums out one chain alone", span, label="cannot sum these out together",
                        hint=f"observe '{var}' given '{z}' only")
            return False
        if not isinstance(x, TensorType):  # already reported
            return False
        if x.shape[:1] != (steps,):
            self.report("E330", f"'{var}' is {x.describe()}, but the chain '{z}' has {steps} steps: its first "
                        "dimension must be the steps", span, label="not observed step by step",
                        hint=f"declare '{var}' with {steps} steps first, e.g. cat[V, {steps}] or real[{steps}, D]")
            return False
        program = self.programs.get(key)
        draws = [s for s in (program.stmts if program is not None else ()) if isinstance(s, ir.Draw)]
        for stmt in draws:
            mixed = next((p for p in stmt.dist.params.values() if not _per_step(p, z)), None)
            if mixed is not None:
                self.report("E330", f"the distribution of '{var}' must depend on the chain '{z}' one step at a time: "
                            f"each {var}_t on {z}_t only", mixed.span,
                            label="may mix the steps of the chain", hint=f"write its parameters from tensors "
                            f"indexed by {z}, e.g. Categorical(logits = E[{z}]) or Normal(mu[{z}], exp(s[{z}])), "
                            "with elementwise functions; networks and reductions may mix steps")
                return False
        return True

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
        infinite = self.infinite_kl(q_source, p_source, q.vars[0])
        if infinite:
            return self.report("E237", f"kl({q.describe()}, {p.describe()}) is infinite: {infinite}", e.span,
                               label="always infinite", hint=f"give '{q.vars[0]}' a prior with a density at every "
                               "real value (Normal, Laplace), or draw it in q from a family on the prior's support")
        return ir.KL(span=e.span, type=SCALAR, q=q, p=p, q_source=q_source, p_source=p_source)

    def infinite_kl(self, q_source: str, p_source: str, var: str) -> str:
        """Why KL(q || p) is infinite whatever the parameters ('' when it need not be): q puts mass
        where p has none (a Normal posterior against a Uniform prior)."""
        fq, fp = self.families.get((q_source, var)), self.families.get((p_source, var))
        if fq not in DISTRIBUTIONS or fp not in DISTRIBUTIONS:
            return ""
        if support_of(fq).everywhere and not support_of(fp).everywhere:
            return f"{fq} has a density at every real value, {fp} is zero outside its range"
        return ""

    def draw(self, decl: ast.SampleDecl, scope: Scope) -> ir.Expr:
        call = decl.value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and self.typer.lookup(call.func.id, scope) is not None
                and self.typer.lookup(call.func.id, scope).kind == "density"):
            return self.report("E231", "`sample x ~ ...` draws from a density term such as p(x) or p(x | z)",
                               decl.value.span, hint="use `sample x = expression` for a deterministic sample")
        term = self.term(call)
        if term is not None and term.vars[0] in self.conditional:
            return self.report("E231", f"`sample ~ {term.describe()}` of a latent is not drawn on its own here",
                               call.span, hint=f"sample the data, whose ancestral draw goes through "
                               f"{self.conditional[term.vars[0]].describe()}: `sample x ~ p(x | ...)`")
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

    # ---- methods of flows and diffusions (gendsl/library/methods.py) ----
    def method(self, e: ast.Call, scope: Scope) -> ir.Expr:
        """`f.inverse(z)`, `q.loss(eps)`, `q.reverse(eps)`: typed by the method's registry entry."""
        attr: ast.Attr = e.func
        if not isinstance(attr.target, ast.Name):
            return self.report("E212", "methods belong to named flows and diffusions", attr.span)
        binding = self.typer.lookup(attr.target.id, scope)
        if binding is None:
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        name = attr.target.id
        known = methods_of(binding.kind)
        entry = known.get(attr.name)
        if entry is None:
            listed = ", ".join(f"{name}.{m}" for m in known) or "none"
            return self.report("E212", f"{binding.kind} '{name}' has no method '{attr.name}'", attr.span,
                               hint=f"methods: {listed}")
        args, kwargs = self.typer.arguments(e, scope)
        if any(a.type is UNKNOWN for a in (*args, *kwargs.values())):
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        values = self.method_arguments(e, entry, args, kwargs)
        if values is None or binding.type.value is None:
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        try:
            use: MethodUse = call_rule(entry.rule, [binding.type], values, skip=1)
        except EntryError as exc:
            return self.report(getattr(exc, "code", "E220"), exc.message, args[0].span if args else e.span,
                               hint=exc.hint)
        if scope.context not in use.contexts:
            return self.report("E212", f"{name}.{attr.name}(...) belongs in {_places(use.contexts)}", e.span,
                               hint=_method_uses(name, binding.kind))
        named = arguments_by_name(entry.rule, args, kwargs, skip=1)
        return ir.Method(span=e.span, type=use.out, obj=name, kind=binding.kind, method=attr.name,
                         args=tuple(named.values()), names=tuple(named))

    def method_arguments(self, e: ast.Call, entry, args: list, kwargs: dict) -> dict | None:
        """A method call's arguments bound to its entry, or None after reporting: the wrong number
        (E204), an option it refuses with what exists instead, or an unknown one (E221)."""
        attr: ast.Attr = e.func
        called = f"{attr.target.id}.{attr.name}"
        shown = f"{attr.target.id}.{entry.signature.split('.', 1)[1]}"
        count = len(parameters(entry.rule, 1))
        required = sum(p.default is p.empty for p in parameters(entry.rule, 1))
        if len(args) > count or (len(args) < required and not kwargs):
            self.report("E204", f"{called} takes {count} argument{'s' if count != 1 else ''}, got {len(args)}",
                        e.span, hint=f"write {shown}")
            return None
        refused = dict(entry.refused)
        for k in e.kwargs:
            if k.name in refused:
                self.report("E221", f"{called} has no option '{k.name}'", k.span, label="not implemented",
                            hint=refused[k.name].format(obj=attr.target.id))
        values, problems = bind(called, entry.rule, [a.type for a in args],
                                {k: v.type for k, v in kwargs.items() if k not in refused}, skip=1)
        generic = describe_signature(called, entry.rule, 1)
        for message, hint in problems:
            self.report("E221", message, option_span(e, message), hint=shown if hint == generic else hint)
        return None if problems or set(kwargs) & set(refused) else values


def _per_step(e: ir.Expr, z: str) -> bool:
    """Does e depend on the chain z only through z_t at each step t (the first axis)? Values free of
    z, rows of a tensor picked by z, and elementwise functions, arithmetic and functions that mix
    within a step of such values."""
    if not any(isinstance(r, ir.Ref) and r.name == z for r in ir.walk(e)):
        return True
    if isinstance(e, ir.Index):
        return not any(isinstance(r, ir.Ref) and r.name == z for r in ir.walk(e.target)) \
            and all(isinstance(i, ir.Ref) or not any(isinstance(r, ir.Ref) and r.name == z for r in ir.walk(i))
                    for i in e.indices)
    if isinstance(e, ir.Unary):
        return _per_step(e.operand, z)
    if isinstance(e, ir.Binary):
        return _per_step(e.left, z) and _per_step(e.right, z)
    if isinstance(e, ir.Apply) and not e.draws:
        rank = e.type.rank if isinstance(e.type, TensorType) else 0
        within = e.order.kind == "elementwise" or (e.order.kind == "mixes" and e.order.axes
                                                   and all(a < 0 and rank + a > 0 for a in e.order.axes))
        return within and all(_per_step(a, z) for a in e.args)
    return False


def _places(contexts: tuple[str, ...]) -> str:
    """`a loss`, `a sample`, `losses and samples`."""
    if len(contexts) == 1:
        return f"a {contexts[0]}"
    return " and ".join(f"{c}es" if c.endswith("s") else f"{c}s" for c in contexts)


def _method_uses(name: str, kind: str) -> str:
    """How the methods of a flow or diffusion are written."""
    if kind == "diffusion":
        return f"`loss simple = {name}.loss(eps)` and `sample x = {name}.reverse(eps)`"
    return f"`sample x = {name}.inverse(z)`"
