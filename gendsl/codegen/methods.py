"""Expressions inside model methods (losses, steps, samples): data from `batch`, latents sampled
once per call, networks called through `self` and named once each.

In a train step, a network call whose value cannot reach the parameters the step updates runs
under torch.no_grad(): the compiled form of `over`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from gendsl.codegen.exprs import ATOM, CALL, Writer, fill, literal, network_arguments
from gendsl.codegen.names import Names, identifier, suffix
from gendsl.graph import ir
from gendsl.graph.dependencies import Reach
from gendsl.library.methods import METHODS
from gendsl.library.signature import bind, call_rule, parameters
from gendsl.types import ObjectType, TensorType


@dataclass
class ModelInfo:
    """What method code needs to know about the model: attribute names and call signatures."""

    graph: nx.DiGraph
    attrs: dict[str, str]                       # graph key -> self attribute
    free: dict[str, list[str]] = field(default_factory=dict)   # module key -> extra forward args
    inputs: dict[str, list[str]] = field(default_factory=dict)
    first_data: str = ""

    def node(self, key: str):
        return self.graph.nodes[key]["data"]

    def call(self, key: str, args: list[str]) -> str:
        """`self.dec(z, self.t0)`: a module called with its inputs, then the model's tensors and
        networks its forward takes (ModuleClass.free)."""
        extra = [f"self.{self.attrs[f]}" for f in self.free.get(key, [])]
        return f"self.{self.attrs[key]}({', '.join([*args, *extra])})"

    def callable(self, key: str) -> str:
        """A network as a value (a penalty's critic, a denoiser, a sampler's energy): the module
        itself, or a function that passes it the tensors and networks it uses."""
        if not self.free.get(key):
            return f"self.{self.attrs[key]}"
        extra = ", ".join(f"self.{self.attrs[f]}" for f in self.free[key])
        return f"(lambda *inputs: self.{self.attrs[key]}(*inputs, {extra}))"


class MethodWriter(Writer):
    def __init__(self, info: ModelInfo, mode: str, over: set[str] | None = None):
        super().__init__()
        self.info = info
        self.mode = mode                  # "loss" or "sample"
        self.over = over                  # trainables a step updates (None: no cuts)
        self.reach = Reach(info.graph)
        self.locals = Names({"batch", "n", "self"})
        self.named: dict[str, str] = {}   # code -> local name
        self.bound: dict[str, str] = {}   # spec variable -> local name
        self.helpers: set[str] = set()

    # -- statements --
    def hoist(self, code: str, base: str, no_grad: bool = False) -> str:
        if code in self.named:
            return self.named[code]
        name = self.locals.fresh(base)
        self.named[code] = name
        if no_grad:
            self.lines += ["with torch.no_grad():", f"    {name} = {code}"]
        else:
            self.lines.append(f"{name} = {code}")
        return name

    def cut(self, expr: ir.Expr | None = None, key: str | None = None) -> bool:
        """True when this value cannot carry gradient to what the step updates."""
        if self.over is None:
            return False
        reached = self.reach.of_expr(expr) if expr is not None else self.reach.of_node(key)
        return not (set(reached) & self.over)

    def batch_size(self) -> str:
        if "n" not in self.bound:
            first = self.bound.get(self.info.first_data, f'batch["{self.info.first_data}"]')
            self.lines.append(f"n = {first}.shape[0]")
            self.bound["n"] = "n"
        return "n"

    # -- variables --
    def data(self, name: str) -> str:
        if name not in self.bound:
            local = self.locals.fresh(name)
            node = self.info.node(name)
            if self.mode == "sample" and node.type is not None and node.type.kind == "cat":
                self.lines.append(f"{local} = torch.arange(n, device=self.device) % {node.type.classes}"
                                  f"  # every class in turn")
            elif self.mode == "sample":
                self.lines.append(f'{local} = batch["{name}"][:n]')
            else:
                self.lines.append(f'{local} = batch["{name}"]')
            self.bound[name] = local
        return self.bound[name]

    def latent(self, name: str) -> str:
        if name in self.bound:
            return self.bound[name]
        node = self.info.node(name)
        local = self.locals.fresh(name)
        if node.encoder and self.mode == "loss":
            dist = self.factor_dist(node.encoder)
            draw = "rsample" if _reparameterized(self.info, node.encoder, name) else "sample"
            self.lines.append(f"{local} = {dist}.{draw}()  # {name} ~ {self.info.node(node.encoder).term.describe()}")
        elif node.prior_factor and self.info.node(node.prior_factor).role == "autoregressive":
            self.lines.append(f"{local} = self.draw_{suffix(name)}({self.batch_size()})  # {name} ~ p({name})")
        elif node.prior_factor:  # a hierarchical prior p(z1 | z2): drawn given its parents' draws
            dist = self.factor_dist(node.prior_factor)
            draw = "rsample" if _reparameterized(self.info, node.prior_factor, name) else "sample"
            value = f"{dist}.{draw}()"
            if self.mode == "sample":  # `mean`: the mean of each draw's distribution, down the hierarchy
                value = f"{dist}.mean if mean else {dist}.sample()"
            self.lines.append(f"{local} = {value}  # {name} ~ {self.info.node(node.prior_factor).term.describe()}")
        else:
            draw = "rsample" if node.prior is not None and node.prior.type.reparameterized else "sample"
            prior = f"self.prior_{identifier(name)}().{draw}(({self.batch_size()},))"
            if self.mode == "sample":  # interpolation and traversals pass their own latent values
                if not any(line.startswith("latents = ") for line in self.lines):
                    self.lines.insert(0, "latents = latents or {}")
                prior = f'latents["{name}"] if "{name}" in latents else {prior}'
            self.lines.append(f"{local} = {prior}  # {name} ~ p({name})")
        self.bound[name] = local
        return local

    def factor_dist(self, key: str) -> str:
        code = self.info.call(key, [self.variable(v) for v in self.info.inputs[key]])
        return self.hoist(code, self.info.attrs[key], no_grad=self.cut(key=key))

    def variable(self, name: str) -> str:
        kind = self.info.node(name).kind
        return self.latent(name) if kind == "latent" else self.data(name)

    # -- expressions --
    def w_Ref(self, e: ir.Ref):
        if e.scope == "data":
            return self.data(e.name), ATOM
        if e.scope == "latent":
            return self.latent(e.name), ATOM
        if e.scope == "tensor":
            return f"self.{self.info.attrs[e.name]}", ATOM
        if e.scope == "net":
            return self.info.callable(e.name), ATOM
        if e.scope == "loss":
            return f"self.loss_{suffix(e.name)}(batch)", CALL
        return identifier(e.name), ATOM

    def w_Apply(self, e: ir.Apply):
        self.helpers.update(e.helpers)
        return super().w_Apply(e)

    def w_CallNet(self, e: ir.CallNet):
        args, one = network_arguments(list(e.args), [self.emit(a) for a in e.args], self)
        code = self.info.call(e.net, args) + ("[0]" if one else "")
        simple = [a for a in args if a.isidentifier()]
        base = "_".join([e.net, *simple]) if len(simple) == len(args) and args else e.net
        return self.hoist(code, base, no_grad=self.cut(e)), ATOM

    def w_LogDensity(self, e: ir.LogDensity):
        var = e.term.vars[0]
        if e.how == "prior":
            return f"self.prior_{identifier(var)}().log_prob({self.latent(var)})", CALL
        if e.how in ("marginal_enumerate", "flow"):
            given = [self.data(g) for g in self.info.node(e.source).given] if e.how == "flow" else []
            return f"self.log_p_{identifier(var)}({', '.join([self.data(var), *given])})", CALL
        dist = self.factor_dist(e.source)
        return f"{dist}.log_prob({self.variable(var)})", CALL

    def w_KL(self, e: ir.KL):
        self.helpers.add("kl_divergence")
        q = self.factor_dist(e.q_source)
        p_node = self.info.node(e.p_source)
        p = f"self.prior_{identifier(e.p_source)}()" if p_node.kind == "latent" else self.factor_dist(e.p_source)
        return f"kl_divergence({q}, {p})", CALL

    def w_Method(self, e: ir.Method):
        """The code the method's registry entry emits (gendsl/library/methods.py)."""
        node = self.info.node(e.obj)
        data = self.info.node(node.var).type
        entry = METHODS[f"{e.kind}.{e.method}"]
        args = _in_parameter_order(entry.rule, e)
        values, _ = bind(entry.name, entry.rule, [], {name: a.type for name, a in args}, skip=1)
        process = node.process.options if e.kind == "diffusion" and node.process else {}
        given = tuple(self.info.node(g).type for g in node.given) if e.kind == "flow" else ()
        obj = ObjectType(kind=e.kind, name=e.obj, value=data, steps=process.get("steps"), given=given,
                         learned=process.get("variance") == "learned")
        use = call_rule(entry.rule, [obj], values, skip=1)
        places = {"obj": f"self.{self.info.attrs[e.obj]}"}
        if "{data}" in use.code:
            places["data"] = self.data(node.var)
        if "{n}" in use.code:
            places["n"] = self.batch_size()
        if "{shape}" in use.code:
            places["shape"] = repr(tuple(data.shape))
        code = use.code
        for name, value in places.items():
            code = code.replace("{%s}" % name, value)
        return fill(code, [self.emit(a) for _, a in args], self), CALL

    def w_SamplerDraw(self, e: ir.SamplerDraw):
        node = self.info.node(e.sampler)
        given = f", given={self.data(node.given)}" if node.given else ""
        code = f"self.{self.info.attrs[e.sampler]}({self.info.callable(node.target)}, {self.batch_size()}{given})"
        return self.hoist(code, e.sampler), ATOM


def _in_parameter_order(rule, e: ir.Method) -> list[tuple[str, ir.Expr]]:
    """A method call's arguments by parameter, in the order of the entry's signature: the `{0}`,
    `{1}`, ... of its code template count the arguments given, in that order."""
    given = dict(zip(e.names, e.args))
    return [(p.name, given[p.name]) for p in parameters(rule, 1) if p.name in given]


def _reparameterized(info: ModelInfo, factor: str, latent: str) -> bool:
    program = info.node(factor).program
    for stmt in program.stmts if program else ():
        if isinstance(stmt, ir.Draw) and stmt.name == latent:
            return stmt.dist.type.reparameterized
    return False


def mean_if_batched(code: str, expr: ir.Expr) -> str:
    batched = isinstance(expr.type, TensorType) and expr.type.batched
    return f"({code}).mean()" if batched and not code.isidentifier() else (f"{code}.mean()" if batched else code)


def diffusion_bound(info: ModelInfo, key: str) -> list[str] | None:
    """The body of `bound_terms(self, batch)` for diffusion `key`: its variational bound's terms with the denoiser
    its loss trains. A conditional denoiser is given each row's own label (no dropout, no guidance),
    so the bound is of log p(x | y). None when no loss trains the diffusion."""
    use = next((e for _, d in info.graph.nodes(data=True) if d["data"].kind == "loss" and d["data"].expr is not None
                for e in ir.walk(d["data"].expr)
                if isinstance(e, ir.Method) and e.obj == key and e.method in ("loss", "vlb")), None)
    if use is None or not isinstance(use.args[0], ir.Ref):
        return None
    writer = MethodWriter(info, "loss")
    var = info.node(key).var
    x = writer.data(var)
    args = dict(zip(use.names, use.args))
    eps = info.callable(use.args[0].name)
    if "y" in args:
        eps = f"self.{info.attrs[key]}.conditioned({eps}, {writer.code(args['y'])})"
    return [*writer.lines, f"return self.{info.attrs[key]}.terms({eps}, {x})"]


__all__ = ["MethodWriter", "ModelInfo", "diffusion_bound", "mean_if_batched", "literal"]

