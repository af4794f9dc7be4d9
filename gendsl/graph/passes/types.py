"""Pass 3: types and static shapes of every declaration, and their typed programs (IR).

Declarations are typed in dependency order (data, tensors, latents, networks, factors, priors,
flows, diffusions, samplers, losses, samples, steps); each node is annotated with its type and,
for anything with a body, a typed program that code generation reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from gendsl import ast
from gendsl.diagnostics import Diagnostic, Note, error
from gendsl.graph import ir
from gendsl.graph.constants import EntryCall, evaluate_or_report
from gendsl.graph.ir import DensityTerm
from gendsl.graph.passes.densities import DensityResolver
from gendsl.graph.passes.expressions import Binding, ExprTyper, Scope, compatible
from gendsl.graph.passes.packing import pack_size, packed_input
from gendsl.graph.passes.pipelines import PipelineTyper, resolve_type
from gendsl.graph.passes.types_priors import PriorsMixin, conditional_prior
from gendsl.graph.passes.types_uses import UsesMixin
from gendsl.library import sources as source_registry
from gendsl.library.entries import Configured
from gendsl.library.distributions import DISTRIBUTIONS, Misfit, fit_event, support_of
from gendsl.library.signature import EntryError, Symbol, bind, call_rule, parameters
from gendsl.library.training import BETA_SCHEDULES, INITS, PROCESSES
from gendsl.types import UNKNOWN, NetType, NumberType, ObjectType, TensorType, context_width


@dataclass(frozen=True)
class Bound:
    """A registry entry as a spec calls it: `Adam(lr=1e-3)`. `values` are the arguments by name
    with defaults filled in (what later stages read); `result` is what the entry's rule returned."""

    name: str
    values: dict[str, Any]   # in the order of the entry's signature
    result: Any
    given: dict[str, Any]    # the same, in the order they were bound: given arguments first

    def configured(self) -> Configured:
        """How nodes store a chosen entry."""
        return Configured(entry=self.name, options=dict(self.values))


class _TypePass(PriorsMixin, UsesMixin):
    def __init__(self, graph: nx.DiGraph):
        self.graph = graph
        self.params: dict[str, Any] = graph.graph.get("params", {})
        self.diagnostics: list[Diagnostic] = []
        self.overridden = graph.graph.get("overridden", set())
        self.pipelines = PipelineTyper(self.params, graph.graph["blocks"], self.diagnostics, self.overridden)
        self.typer = ExprTyper(self.params, self.pipelines, self.diagnostics)
        self.model = self.typer.model
        self.failed_draws: set[tuple[str, str]] = set()  # (owner, variable): already reported
        for name, value in self.params.items():
            kind = {bool: "bool", int: "int", float: "float", str: "str"}[type(value)]
            self.model[name] = Binding("param", NumberType(kind=kind, value=value), name)

    # ---- helpers ----
    def resolve_type(self, texpr: ast.TypeExpr, batched: bool = True):
        return resolve_type(texpr, self.params, self.diagnostics, batched, self.overridden)

    def nodes(self, kind: str) -> list[tuple[str, Any]]:
        return [(k, d["data"]) for k, d in self.graph.nodes(data=True) if d["data"].kind == kind]

    def set(self, key: str, **fields) -> None:
        self.graph.nodes[key]["data"] = self.graph.nodes[key]["data"].annotate(**fields)

    def report(self, code: str, message: str, span, **kw) -> None:
        self.diagnostics.append(error(code, message, span, **kw))

    def registry_value(self, expr: ast.Expr, registry, what: str) -> "Bound | None":
        """`Adam(lr=1e-3)` -> its entry name, bound arguments and rule result; None after reporting."""
        ok, value = evaluate_or_report(expr, self.params, self.diagnostics, f"a {what}")
        if not ok:
            return None
        if isinstance(value, Symbol):
            value = EntryCall(value.name, (), (), expr)
        if not isinstance(value, EntryCall):
            self.report("E207", f"expected a {what} such as {next(iter(registry))}(...)", expr.span,
                        hint=f"known: {', '.join(sorted(registry))}")
            return None
        if value.name not in registry:
            return None  # reported by the names pass
        entry = registry[value.name]
        values, problems = bind(value.name, entry.rule, list(value.args), dict(value.kwargs), skip=0)
        for message, hint in problems:
            self.report("E221", message, expr.span, hint=hint)
        if problems:
            return None
        try:
            result = call_rule(entry.rule, [], values, skip=0)
        except EntryError as exc:
            self.report("E220", exc.message, expr.span, hint=exc.hint)
            return None
        return Bound(value.name, _in_order(entry, values), result, values)

    # ---- declarations ----
    def data(self) -> None:
        groups: dict[int, list[tuple[str, Any]]] = {}
        for key, node in self.nodes("data"):
            groups.setdefault(node.group, []).append((key, node))
        for members in groups.values():
            decl: ast.DataDecl = members[0][1].decl
            found = self.registry_value(decl.source, source_registry.SOURCES, "data source")
            outputs = found.result if found else None
            source_args = dict(found.given) if found else {}
            if outputs is not None and len(decl.vars) > len(outputs):
                self.report("E225", f"{found.name} provides {len(outputs)} array{'s' if len(outputs) > 1 else ''}, "
                            f"but {len(decl.vars)} variables are declared", decl.span,
                            hint=f"{found.name} gives: " + ", ".join(o.describe() for o in outputs))
                outputs = None
            for (key, node), var in zip(members, decl.vars):
                declared = self.resolve_type(var.type)
                if declared is not None and outputs is not None:
                    self.check_data_type(var, declared, outputs[node.position], found.name)
                self.model[key] = Binding("data", declared or UNKNOWN, key)
                self.set(key, type=declared, source=found.name if found else "", source_args=source_args)

    def check_data_type(self, var: ast.DataVar, declared: TensorType, given: TensorType, source: str) -> None:
        kinds_ok = (declared.kind == given.kind or (declared.kind == "real" and given.kind == "bin"))
        if declared.kind == "cat" or given.kind == "cat":
            kinds_ok = declared.kind == given.kind and declared.classes == given.classes
        if not kinds_ok or declared.numel != given.numel:
            self.report("E224", f"{source} gives {given.describe()} but '{var.name.name}' is declared "
                        f"{declared.describe()}", var.type.span, label=f"{source} gives {given.describe()}",
                        hint="the declared type may reshape the data (same number of values) and may "
                             "read bin data as real, nothing else")

    def tensors(self) -> None:
        for key, node in self.nodes("tensor"):
            t = self.resolve_type(node.decl.type, batched=False)
            init = self.registry_value(node.decl.init, INITS, "initializer")
            self.model[key] = Binding("tensor", t or UNKNOWN, key)
            self.set(key, type=t, init=init.configured() if init else Configured(entry="zeros"),
                     params=t.numel if t else 0)

    def latents(self) -> None:
        for key, node in self.nodes("latent"):
            t = self.resolve_type(node.decl.type)
            self.model[key] = Binding("latent", t or UNKNOWN, key)
            self.set(key, type=t)

    def net_order(self) -> list[str]:
        nets = [k for k, _ in self.nodes("net")]
        sub = self.graph.subgraph(nets)
        try:
            order = {k: i for i, k in enumerate(self.graph)}
            return list(nx.lexicographical_topological_sort(sub, key=order.__getitem__))
        except nx.NetworkXUnfeasible:
            cycle = [u for u, _ in nx.find_cycle(sub)]
            node = self.graph.nodes[cycle[0]]["data"]
            self.report("E234", f"networks call each other in a cycle: {' -> '.join(cycle + [cycle[0]])}",
                        node.span, hint="a network cannot (indirectly) call itself")
            return nets

    def nets(self) -> None:
        for key in self.net_order():
            node = self.graph.nodes[key]["data"]
            decl: ast.NetDecl = node.decl
            inputs = []
            for p in decl.params:
                inputs.append((p.name.name, self.input_type(p, key)))
            pack = pack_size(decl, self.params, self.diagnostics)
            program = self.program(key, decl.body, [(name, packed_input(t, pack, name, decl, self.diagnostics))
                                                    for name, t in inputs])
            declared = self.resolve_type(decl.returns) if decl.returns else None
            result = program.result.type if program.result is not None else UNKNOWN
            output = self.net_output(decl, declared, result, program)
            self.typer.net_origin[key] = _origin(program.result)
            net_type = NetType(name=key, role=decl.role, inputs=tuple(t for _, t in inputs), output=output, pack=pack)
            self.model[key] = Binding("net", net_type, key)
            origin = _origin(program.result)
            self.set(key, type=net_type, program=program, params=sum(u.params for u in program.layers()),
                     output_origin=origin.span if origin else None, pack=pack)

    def input_type(self, p: ast.NetParam, owner: str):
        if p.type is not None:
            return self.resolve_type(p.type) or UNKNOWN
        binding = self.model.get(p.name.name)
        if binding is not None and binding.kind in ("data", "latent"):
            return binding.type
        self.report("E205", f"cannot tell the type of input '{p.name.name}' of {owner}", p.span,
                    label="no type", hint=f"write `{p.name.name}: real[...]`, or name it after a data or "
                                          "latent variable to take its type")
        return UNKNOWN

    def net_output(self, decl: ast.NetDecl, declared, result, program):
        if declared is None or result is UNKNOWN:
            return declared or result
        if compatible(result, declared) and (declared.kind != "real" or result.kind != "cat"):
            return declared
        self.report("E222", f"{decl.name.name} is declared to return {declared.describe()} but its body "
                    f"gives {result.describe()}", program.result.span if program.result else decl.span,
                    label=f"this is {result.describe()}",
                    notes=[Note(message="return type declared here", span=decl.returns.span)],
                    hint="change the last layer's width or the declared type")
        return declared

    def program(self, owner: str, body, inputs, context: str = "net", draws: bool = False) -> ir.Program:
        """The typed body of a network (`draws=False`) or of a density block."""
        scope = Scope(context=context, owner=owner,
                      local={n: Binding("input", t, n) for n, t in inputs})
        stmts: list = []
        result = None
        for i, stmt in enumerate(body):
            if isinstance(stmt, ast.Assign):
                value = self.no_distribution(self.typer.expr(stmt.value, scope), owner)
                scope.local[stmt.target.name] = Binding("local", value.type, stmt.target.name)
                stmts.append(ir.Assign(span=stmt.span, name=stmt.target.name, value=value))
            elif isinstance(stmt, ast.Draw):
                dist = self.typer.expr(stmt.dist, scope)
                if not draws:
                    self.report("E210", f"network {owner} computes values; a draw `{stmt.target.name} ~ ...` "
                                "belongs in a density block", stmt.span, label="a draw in a network",
                                hint="draw in an encoder q(z | x) or a decoder p(x | z) block, or give a latent "
                                     "its prior: `latent z: real[8] ~ Normal(0, 1)`")
                elif isinstance(dist, ir.Dist):
                    stmts.append(ir.Draw(span=stmt.span, name=stmt.target.name, dist=dist))
                else:
                    self.failed_draws.add((owner, stmt.target.name))
                if draws and not isinstance(dist, ir.Dist) and dist.type is not UNKNOWN:
                    self.report("E235", f"'~' draws from a distribution, got {dist.type.describe()}",
                                stmt.dist.span, hint="write e.g. `z ~ Normal(loc = m, scale = s)`")
            else:
                if i != len(body) - 1:
                    self.report("E233", "this value is not used: only the last line of a network is its output",
                                stmt.span, hint="name it (`h = ...`) or move it to the end")
                result = self.no_distribution(self.typer.expr(stmt.value, scope), owner)
        return ir.Program(inputs=tuple(inputs), stmts=tuple(stmts), result=result)

    def no_distribution(self, value: ir.Expr, owner: str) -> ir.Expr:
        """A distribution is only ever drawn from (`~`): as a value it would mean nothing."""
        if not isinstance(value, ir.Dist):
            return value
        self.report("E210", f"{value.family}(...) is a distribution; in {owner} it can only follow '~'",
                    value.span, hint=f"draw from it in a density block (`x ~ {value.family}(...)`), or compute "
                                     "its parameters here and draw where the variable is modelled")
        return ir.Const(span=value.span, type=UNKNOWN, value=None)

    # ---- densities ----
    def factors(self) -> None:
        for key, node in self.nodes("factor"):
            self.model.setdefault(node.density, Binding("density", ObjectType(kind="density", name=node.density)))
            if isinstance(node.decl, ast.ObserveDecl):
                self.observe(key, node)
                continue
            decl: ast.DensityDecl = node.decl
            variables = tuple(v.name for v in decl.vars)
            given = tuple(g.name for g in decl.given)
            self.check_factor_roles(decl, variables, given)
            inputs = [(n, self.model[n].type) for n in (*given, *variables)
                      if n in self.model and (n in given or decl.role == "autoregressive")]
            program = self.check_draws(key, decl, self.program(key, decl.body, inputs, draws=True), variables)
            term = DensityTerm(density=node.density, vars=variables, given=given)
            self.set(key, term=term, program=program, params=sum(u.params for u in program.layers()))
        self.model.setdefault("p", Binding("density", ObjectType(kind="density", name="p")))

    def check_factor_roles(self, decl: ast.DensityDecl, variables, given) -> None:
        kinds = {n: self.model[n].kind for n in (*variables, *given) if n in self.model}
        if decl.role == "encoder":
            wrong = [v for v in variables if kinds.get(v) != "latent"]
            if wrong:
                self.report("E309", f"an encoder infers latent variables, but '{wrong[0]}' is {kinds.get(wrong[0])}",
                            decl.name.span, hint="write `encoder q(z | x)` with z a latent")
            if decl.name.name == "p":
                self.report("E309", "the encoder is a variational density: call it q, not p", decl.name.span,
                            hint="p is the generative model: p(z), p(x | z)")
        elif decl.name.name != "p":
            self.report("E309", f"the generative model is written p, as in p({', '.join(variables)}"
                        f"{' | ' + ', '.join(given) if given else ''})", decl.name.span,
                        hint=f"rename '{decl.name.name}' to 'p'; encoders use another letter such as q")
        if decl.role in ("decoder", "autoregressive"):
            # a decoder p(z1 | z2) of a latent is the prior that latent names: `latent z1 ~ p(z1 | z2)`
            wrong = [v for v in variables if kinds.get(v) != "data"
                     and not (kinds.get(v) == "latent" and len(variables) == 1
                              and conditional_prior(self.graph, v) is not None)]
            if wrong:
                latent = kinds.get(wrong[0]) == "latent"
                self.report("E309", f"a {decl.role} models data, but '{wrong[0]}' is {kinds.get(wrong[0])}",
                            decl.name.span, hint=f"to make this block the prior of '{wrong[0]}', declare "
                            f"`latent {wrong[0]}: ... ~ p({wrong[0]}{' | ' + ', '.join(given) if given else ''})`"
                            if latent else "latents get their distribution from their prior")
        if decl.role == "autoregressive" and given:
            self.report("E309", "an autoregressive density conditions only on its own earlier dimensions",
                        decl.span, hint="write `autoregressive p(x) { x ~ ... }`")

    def check_draws(self, key: str, decl: ast.DensityDecl, program: ir.Program, variables) -> ir.Program:
        """Each declared variable drawn once, from a distribution that fits it; returns the program
        with its draws fitted to their variables."""
        drawn = [s for s in program.stmts if isinstance(s, ir.Draw)]
        fitted: dict[str, ir.Dist] = {}
        given = f" | {', '.join(g.name for g in decl.given)}" if decl.given else ""
        for var in variables:
            draws = [d for d in drawn if d.name == var]
            if (key, var) in self.failed_draws:
                continue
            if len(draws) != 1:
                self.report("E309", f"{decl.role} {decl.name.name}({', '.join(variables)}{given}) must draw "
                            f"'{var}' exactly once (found {len(draws)})", decl.span,
                            hint=f"add `{var} ~ Normal(...)` (or Bernoulli, ...)")
            elif var in self.model:
                # an autoregressive prior scores its latent position by position, as it would data
                fitted[var] = self.fit(draws[0].dist, self.model[var].type, var, draws[0].span,
                                       drawn=self.model[var].kind == "latent" and decl.role != "autoregressive")
        for extra in (d for d in drawn if d.name not in variables):
            self.report("E309", f"{decl.role} draws '{extra.name}', which it does not declare",
                        extra.span, hint=f"the block's variables are {', '.join(variables)}")
        stmts = tuple(s.model_copy(update={"dist": fitted[s.name]}) if isinstance(s, ir.Draw) and s.name in fitted
                      else s for s in program.stmts)
        return program.model_copy(update={"stmts": stmts})

    def fit(self, dist: ir.Dist, declared, var: str, span, *, drawn: bool, numbers_fill: bool = False) -> ir.Dist:
        """Hold a distribution to the variable it models (its family's support, categories and
        shape, E226) and give it the variable's type: numbers broadcast to the declared shape.
        Returns the distribution with its event fitted (unchanged after reporting)."""
        if declared is UNKNOWN or declared is None or dist.type is UNKNOWN:
            return dist
        params = {name: value.type for name, value in dist.params.items()}
        fitted = fit_event(dist.family, params, declared, var, drawn=drawn, numbers_fill=numbers_fill,
                           event=dist.type.event)
        if isinstance(fitted, Misfit):
            at = dist.params[fitted.param].span if fitted.param else span
            self.report("E226", fitted.message, at, hint=fitted.hint)
            return dist
        return dist.model_copy(update={"type": dist.type.model_copy(update={"event": fitted})})

    def observe(self, key: str, node) -> None:
        decl: ast.ObserveDecl = node.decl
        var = decl.name.name
        binding = self.model.get(var)
        if binding is not None and binding.kind != "data":
            self.report("E309", f"observe is for data, but '{var}' is {binding.kind}", decl.name.span,
                        hint="latents get their distribution from their prior")
        dist = self.typer.expr(decl.dist, Scope(context="observe", owner=key))
        given = tuple(sorted({r.name for r in ir.walk(dist) if isinstance(r, ir.Ref) and r.scope == "latent"}))
        if isinstance(dist, ir.Dist) and binding is not None and binding.kind == "data":
            dist = self.fit(dist, binding.type, var, decl.dist.span, drawn=False)
        program = ir.Program(inputs=tuple((g, self.model[g].type) for g in given),
                             stmts=(ir.Draw(span=decl.span, name=var, dist=dist),) if isinstance(dist, ir.Dist) else ())
        self.set(key, term=DensityTerm(density="p", vars=(var,), given=given), program=program)

    def flows(self) -> None:
        for key, node in self.nodes("flow"):
            decl: ast.FlowDecl = node.decl
            x_type = self.input_type(decl.param, key)
            z = self.model.get(decl.latent.name)
            out, layers = self.pipelines.apply(x_type, decl.stages) if x_type is not UNKNOWN else (UNKNOWN, [])
            if z is not None and z.kind != "latent":
                self.report("E305", f"a flow maps data to a latent, but '{decl.latent.name}' is {z.kind}",
                            decl.latent.span, hint="declare `latent z: real[...] ~ Normal(0, 1)`")
            elif z is not None and out is not UNKNOWN and z.type is not UNKNOWN and out.shape != z.type.shape:
                self.report("E305", f"flow {key} maps {x_type.describe()} to {out.describe()}, but the latent "
                            f"'{decl.latent.name}' is {z.type.describe()}", decl.latent.span,
                            hint="a flow keeps the dimension: the latent must have the data's shape")
            elif z is not None:
                self.check_flow_prior(key, decl)
            given = self.flow_context(key, decl)
            program = ir.Program(inputs=((decl.param.name.name, x_type), *given), stmts=(),
                                 result=ir.Layers(span=decl.span, type=out, input=ir.Ref(
                                     span=decl.param.span, type=x_type, name=decl.param.name.name, scope="input"),
                                     layers=tuple(layers)) if out is not UNKNOWN else None)
            usable = isinstance(x_type, TensorType) and len(given) == len(decl.given)  # else: reported
            self.model[key] = Binding("flow", ObjectType(kind="flow", name=key, value=x_type if usable else None,
                                                         given=tuple(t for _, t in given)), key)
            width = sum(context_width(t) for _, t in given)
            self.set(key, program=program, params=sum(u.params + u.context_units * width for u in layers))

    def flow_context(self, key: str, decl: ast.FlowDecl) -> list[tuple[str, TensorType]]:
        """The data a conditional flow `f(x | y)` is given, with their types."""
        given = []
        for extra in decl.given[1:]:
            self.report("E305", f"flow {key} is given {len(decl.given)} values; a conditional flow is given one",
                        extra.span, label="one too many", hint=f"write `flow {key}({decl.param.name.name} | "
                        f"{decl.given[0].name}) <-> ...`")
        for ident in decl.given[:1]:
            binding = self.model.get(ident.name)
            if binding is None or binding.type is UNKNOWN:
                continue  # unknown names: reported by the names pass
            if binding.kind != "data" or ident.name == decl.param.name.name:
                self.report("E305", f"flow {key} is given '{ident.name}', which is {binding.kind}"
                            + (" (the flow's own input)" if ident.name == decl.param.name.name else ""),
                            ident.span, label="not a condition",
                            hint="a conditional flow `flow f(x | y) <-> z` is given other data, such as a label")
                continue
            given.append((ident.name, binding.type))
        return given

    def check_flow_prior(self, key: str, decl: ast.FlowDecl) -> None:
        """A flow maps data onto every real value, so its latent's prior needs a density at each
        (a Uniform prior makes log p(x) -inf as soon as f(x) leaves [low, high))."""
        prior = self.graph.nodes[decl.latent.name]["data"].prior
        if prior is not None and not support_of(prior.family).everywhere:
            fits = [name for name, entry in DISTRIBUTIONS.items() if entry.support.everywhere]
            self.report("E305", f"flow {key}'s latent '{decl.latent.name}' has a {prior.family} prior, which has no "
                        "density at some real values the flow can reach", prior.span,
                        hint=f"give '{decl.latent.name}' a prior with a density everywhere: {', '.join(fits)}")

    def diffusions(self) -> None:
        for key, node in self.nodes("diffusion"):
            decl: ast.DiffusionDecl = node.decl
            var = self.model.get(decl.var.name)
            if var is not None and (var.kind != "data" or var.type is UNKNOWN or var.type.kind != "real"):
                self.report("E321", f"a diffusion runs on real-valued data, but '{decl.var.name}' is "
                            f"{var.kind} {var.type.describe()}", decl.var.span,
                            hint="declare the data as real[...]")
            found = self.registry_value(decl.process, PROCESSES, "diffusion process")
            process = betas = None
            if found:
                options = dict(found.values)
                chosen = options.pop("betas", None)
                process = Configured(entry=found.name, options=options)
                betas = Configured(entry="linear", options={"start": 1e-4, "end": 0.02}) if chosen is None \
                    else self.schedule_value(chosen, decl.process)
            x_type = var.type if var is not None and isinstance(var.type, TensorType) else None
            steps = process.options.get("steps") if process is not None else None
            learned = process is not None and process.options.get("variance") == "learned"
            self.model[key] = Binding("diffusion", ObjectType(kind="diffusion", name=key, value=x_type, steps=steps,
                                                              learned=learned), key)
            self.set(key, process=process, betas=betas)

    def schedule_value(self, betas: Any, where: ast.Expr) -> Configured | None:
        if isinstance(betas, Symbol):
            betas = EntryCall(betas.name, (), (), where)
        if not isinstance(betas, EntryCall) or betas.name not in BETA_SCHEDULES:
            self.report("E207", "betas must be a noise schedule such as linear(1e-4, 0.02) or cosine()",
                        where.span, hint=f"known: {', '.join(BETA_SCHEDULES)}")
            return None
        entry = BETA_SCHEDULES[betas.name]
        values, problems = bind(betas.name, entry.rule, list(betas.args), dict(betas.kwargs), skip=0)
        for message, hint in problems:
            self.report("E221", message, betas.node.span, hint=hint)
        if problems:
            return None
        try:
            call_rule(entry.rule, [], values, skip=0)  # the entry's own checks of the values
        except EntryError as exc:
            self.report("E220", exc.message, betas.node.span, hint=exc.hint)
            return None
        return Configured(entry=betas.name, options=_in_order(entry, values))

    def densities(self) -> None:
        factors = {k: n.term for k, n in self.nodes("factor") if n.term is not None}
        self.typer.densities = DensityResolver(
            self.typer, factors, {k: n.role for k, n in self.nodes("factor")},
            latents={k: n.type for k, n in self.nodes("latent") if n.type is not None},
            encoders={n.term.vars[0]: k for k, n in self.nodes("factor") if n.role == "encoder" and n.term},
            flows={k: (n.var, n.given) for k, n in self.nodes("flow")},
            diffusions={k: n.var for k, n in self.nodes("diffusion")},
            families=self.families(), programs={k: n.program for k, n in self.nodes("factor")},
            conditional={k: self.graph.nodes[n.prior_factor]["data"].term for k, n in self.nodes("latent")
                         if n.prior_factor})

    def families(self) -> dict[tuple[str, str], str]:
        """(factor or latent, variable) -> the family it draws the variable from."""
        found = {(k, k): n.prior.family for k, n in self.nodes("latent") if n.prior is not None}
        for key, node in self.nodes("factor"):
            for stmt in node.program.stmts if node.program is not None else ():
                if isinstance(stmt, ir.Draw):
                    found[(key, stmt.name)] = stmt.dist.family
        return found

    def run(self) -> None:
        self.data()
        self.tensors()
        self.latents()
        self.nets()
        self.factors()
        self.priors()
        self.check_prior_order()
        self.flows()
        self.diffusions()
        self.samplers()
        self.densities()
        self.losses()
        self.samples()
        self.steps()
        self.train_config()
        self.metrics()


def _in_order(entry, values: dict[str, Any]) -> dict[str, Any]:
    """Bound arguments in the order of the entry's signature (generated code lists them so)."""
    return {p.name: values[p.name] for p in parameters(entry.rule, 0) if p.name in values}


def _origin(result) -> ir.LayerUse | None:
    """The layer that fixed a network's output shape, for notes in diagnostics."""
    if isinstance(result, ir.Layers) and result.layers:
        return result.layers[-1]
    return None


def infer_types(graph: nx.DiGraph) -> tuple[nx.DiGraph, list[Diagnostic]]:
    """Type every declaration; annotate nodes with types and typed programs."""
    graph = graph.copy()
    typing_pass = _TypePass(graph)
    typing_pass.run()
    return graph, typing_pass.diagnostics
