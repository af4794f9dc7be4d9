"""`logmeanexp(w, k=K)` and `logsumexp(w, k=K)` in a loss: `w` evaluated for K independent draws
of the latents it uses (Burda et al. 2016's importance samples), then reduced over the draws.

The draws are laid out k-major on a batch of K * n: row `j * n + i` is draw j of sample i. Data
are repeated K times (`x.repeat(K, 1)`), latents are drawn afresh on that batch (from their
encoder, else from their prior), and every expression inside means what it means anywhere else,
on K * n samples. An encoder given data only runs once, on the n samples, as by hand:
`q.rsample((K,))` draws K values of each sample, and `log q(z | x)` scores them as [K, n]. The
function's template then views the K * n values as [K, n] and reduces over the draws
(functions.py). Draws inside are independent of the draws of the same latents outside the call.
"""

from __future__ import annotations

from gendsl.codegen.exprs import ATOM, CALL, fill
from gendsl.codegen.methods import MethodWriter, _reparameterized
from gendsl.graph import ir


class DrawsWriter(MethodWriter):
    """Writes the argument of `logmeanexp` into the lines of the loss around it, with data
    repeated K times and latents of its own."""

    def __init__(self, outer: MethodWriter, k: int | str):  # a number, or the name of an argument
        super().__init__(outer.info, outer.mode, outer.over)
        self.outer, self.k = outer, k
        self.lines = outer.lines        # one method body, in order
        self.locals = outer.locals      # one namespace: no local shadows another
        self.helpers = outer.helpers

    def data(self, name: str) -> str:
        if name not in self.bound:
            outer = self.outer.data(name)
            rank = self.info.node(name).type.rank
            local = self.locals.fresh(f"{name}_k")
            self.lines.append(f"{local} = {outer}.repeat({self.k}{', 1' * rank})"
                              f"  # {self.k} copies, k-major: draw j of sample i is row j * n + i")
            self.bound[name] = local
        return self.bound[name]

    def batch_size(self) -> str:
        if "n" not in self.bound:
            local = self.locals.fresh("n_k")
            self.lines.append(f"{local} = {self.k} * {self.outer.batch_size()}")
            self.bound["n"] = local
        return self.bound["n"]

    # -- factors given data only (an encoder q(z | x)) run once, on the n samples: their k draws
    #    are `q.rsample((k,))`, and they score a k * n value viewed as [k, n, ...] --
    def given_data_only(self, key: str) -> bool:
        return all(self.info.node(v).kind == "data" for v in self.info.inputs[key])

    def latent(self, name: str) -> str:
        node = self.info.node(name)
        if name in self.bound or not (node.encoder and self.given_data_only(node.encoder)):
            return super().latent(name)
        dist = self.outer.factor_dist(node.encoder)
        draw = "rsample" if _reparameterized(self.info, node.encoder, name) else "sample"
        local = self.locals.fresh(name)
        self.lines.append(f"{local} = {dist}.{draw}(({self.k},)).flatten(0, 1)  # {name} ~ "
                          f"{self.info.node(node.encoder).term.describe()}, {self.k} draws per sample, k-major")
        self.bound[name] = local
        return local

    def w_LogDensity(self, e: ir.LogDensity):
        if e.how != "factor" or not self.given_data_only(e.source):
            return super().w_LogDensity(e)
        dist = self.outer.factor_dist(e.source)
        value = self.variable(e.term.vars[0])
        return f"{dist}.log_prob({value}.unflatten(0, ({self.k}, -1))).flatten(0, 1)", CALL


def over_draws(writer: MethodWriter, e: ir.Apply) -> tuple[str, int]:
    """The code of `logmeanexp(w, k)`: w's K * n values, named, reduced over the draws."""
    inner = DrawsWriter(writer, e.draws)
    weights = inner.hoist(inner.code(e.args[0]), "log_w")  # [K * n]
    return fill(e.code, [(weights, ATOM)], writer), CALL
