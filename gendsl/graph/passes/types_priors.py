"""Pass 3: the priors of latents, including hierarchies (`latent z1 ~ p(z1 | z2)` with a
`decoder p(z1 | z2)` block as z1's prior). Mixed into the type pass of types.py."""

from __future__ import annotations

import networkx as nx

from gendsl import ast
from gendsl.ast import hint_text
from gendsl.graph import ir
from gendsl.graph.passes.expressions import Scope
from gendsl.types import UNKNOWN


class PriorsMixin:
    def priors(self) -> None:
        encoders = {term.vars[0]: k for k, n in self.nodes("factor") if n.role == "encoder"
                    for term in [n.term] if term is not None}
        for key, node in self.nodes("latent"):
            call = conditional_prior(self.graph, key)
            if call is not None:
                self.set(key, prior=None, prior_factor=self.prior_factor(key, call), encoder=encoders.get(key))
                continue
            prior = self.typer.expr(node.decl.prior, Scope(context="prior", owner=key))
            if isinstance(prior, ir.Dist) and node.type is not None:
                prior = self.fit(prior, node.type, key, node.decl.prior.span, drawn=True, numbers_fill=True)
            elif prior.type is not UNKNOWN and not isinstance(prior, ir.Dist):
                self.report("E226", f"the prior of '{key}' must be a distribution, got {prior.type.describe()}",
                            node.decl.prior.span, hint="write e.g. `latent z: real[8] ~ Normal(0, 1)`")
            self.set(key, prior=prior if isinstance(prior, ir.Dist) else None, encoder=encoders.get(key))

    def prior_factor(self, latent: str, call: ast.Call) -> str | None:
        """The factor `p(z1 | z2, ...)` a latent names as its prior, or None after reporting: the
        term must be over the latent itself (E309), given variables only (E214), and defined by a
        decoder block (E215)."""
        names = [a.id if isinstance(a, ast.Name) else None for a in (*call.args, *call.given)]
        if None in names or any(self.model.get(n) is None or self.model[n].kind not in ("data", "latent")
                                for n in names):
            self.report("E214", "a prior p(z | ...) takes variable names, e.g. p(z1 | z2)", call.span)
            return None
        variables, given = tuple(names[:len(call.args)]), set(names[len(call.args):])
        if variables != (latent,):
            self.report("E309", f"the prior of '{latent}' must be a distribution of '{latent}', not "
                        f"{hint_text(call)}", call.span, hint=f"write `latent {latent}: ... ~ p({latent} | ...)`")
            return None
        for key, node in self.nodes("factor"):
            if node.role in ("decoder", "autoregressive") and node.term is not None and node.term.vars == variables \
                    and set(node.term.given) == given:
                return key
        self.report("E215", f"nothing in the model defines {hint_text(call)}, the prior of '{latent}'", call.span,
                    hint=f"add `decoder {hint_text(call)} {{ {latent} ~ Normal(...) }}`")
        return None

    def check_prior_order(self) -> None:
        """Latents whose priors are given each other in a cycle have no joint distribution (E325)."""
        parents = nx.DiGraph()
        for key, node in self.nodes("latent"):
            parents.add_node(key)
            if node.prior_factor:
                term = self.graph.nodes[node.prior_factor]["data"].term
                parents.add_edges_from((g, key) for g in term.given if g in self.model
                                       and self.model[g].kind == "latent")
        try:
            cycle = [u for u, _ in nx.find_cycle(parents)]
        except nx.NetworkXNoCycle:
            return
        node = self.graph.nodes[cycle[0]]["data"]
        self.report("E325", f"the priors of {', '.join(cycle)} are given each other in a cycle: "
                    f"{' -> '.join(cycle + [cycle[0]])}", node.decl.prior.span,
                    hint="a hierarchy of latents goes one way: z2 ~ p(z2), z1 ~ p(z1 | z2), x ~ p(x | z1)")


def conditional_prior(graph: nx.DiGraph, latent: str) -> ast.Call | None:
    """`latent z1: ... ~ p(z1 | z2)`: the density term a latent declares as its prior, if it does."""
    node = graph.nodes[latent]["data"] if latent in graph else None
    prior = getattr(node.decl, "prior", None) if node is not None and node.kind == "latent" else None
    if isinstance(prior, ast.Call) and isinstance(prior.func, ast.Name) and prior.func.id == "p" \
            and any(d["data"].kind == "factor" and d["data"].density == "p" for _, d in graph.nodes(data=True)):
        return prior
    return None
