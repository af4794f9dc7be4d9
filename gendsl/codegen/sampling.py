"""Sample methods (`sample x = G(z)`, `sample x ~ p(x)`) and the likelihood methods that
evaluation uses: log_prob (exact), log_weights / elbo (encoder models), bound (diffusion)."""

from __future__ import annotations

from gendsl.codegen.methods import MethodWriter, diffusion_bound
from gendsl.codegen.model import ModelSource, _nodes
from gendsl.codegen.names import identifier, suffix
from gendsl.codegen.weights import hierarchical_weights
from gendsl.graph import ir
from gendsl.graph.passes.ensembles import ensemble_of, masked_layers
from gendsl.graph.passes.order import analyze, analyze_network
from gendsl.graph.passes.roles import label_energy
from gendsl.spec import Classifier, Likelihood, Sample


def autoregressive_priors(ms: ModelSource) -> None:
    """`draw_K(n)` for each latent whose prior is an autoregressive block (`latent k ~ p(k)`, a
    VQ-VAE's prior over its code grid): drawn position by position, as `sample x ~ p(x)` draws data."""
    info = ms.info
    for name, node in _nodes(info, "latent"):
        if node.prior_factor and info.node(node.prior_factor).role == "autoregressive":
            ms.method(f"draw_{suffix(name)}(self, n, mean=False)", f"n draws of {name} ~ p({name}), one position "
                      "at a time", autoregressive_draw(ms, node.prior_factor, name, node.type),
                      decorator="@torch.no_grad()")


def samples(ms: ModelSource) -> dict[str, Sample]:
    """One `sample_NAME(n, batch=None, mean=False)` method per sample statement."""
    info = ms.info
    out = {}
    for key, node in _nodes(info, "sample"):
        if node.expr is None:
            continue
        var = key.split(":", 1)[1]
        writer = MethodWriter(info, "sample")
        writer.bound["n"] = "n"
        if isinstance(node.expr, ir.DrawDensity):
            body = draw_density(ms, writer, node.expr)
        elif node.expr.type.batched:
            body = [f"return {writer.code(node.expr)}"]
        else:  # one value shared by every sample (e.g. `sample x = mu`): n copies of it
            shape = ", ".join(["n", *map(str, node.expr.type.shape)])
            body = [f"return {writer.code(node.expr)}.expand({shape})"]
        ms.helpers |= writer.helpers
        data = sorted(v for v in writer.bound if v in info.graph and info.node(v).kind == "data"
                      and info.node(v).type.kind != "cat")
        uses_batch = bool(data)
        ms.method(f"sample_{suffix(var)}(self, n, batch=None, mean=False, latents=None)",
                  f"sample {var} {node.op} {_text(info, node)}: n samples"
                  + (" (held-out data from `batch`)" if uses_batch else ""),
                  writer.lines + body, decorator="@torch.no_grad()")
        t = node.expr.type
        latents = [v for v in writer.bound if v in info.graph and info.node(v).kind == "latent"
                   and not info.node(v).prior_factor]  # those drawn from a prior alone: a caller may set them
        out[var] = Sample(method=f"sample_{suffix(var)}", kind=t.kind, shape=t.shape, classes=t.classes,
                          needs_batch=uses_batch, data=tuple(data), latents=tuple(latents))
    return out


def _text(info, node) -> str:
    from gendsl.codegen.model import _source_text

    return " ".join(_source_text(info, node.decl.value.span).split())


def draw_density(ms: ModelSource, writer: MethodWriter, expr: ir.DrawDensity) -> list[str]:
    info = ms.info
    var = expr.term.vars[0]
    node = info.node(var)
    if node.kind == "latent":
        return [f"return self.prior_{identifier(var)}().sample((n,))"]
    for key, flow in _nodes(info, "flow"):
        if flow.var == var:
            z = f"self.prior_{identifier(flow.latent)}().sample((n,))"
            return [f"return self.{info.attrs[key]}.inverse({z})"]
    factor_key, factor = next((k, f) for k, f in _nodes(info, "factor")
                              if f.density == "p" and f.term.vars == (var,))
    if factor.role == "autoregressive":
        return autoregressive_draw(ms, factor_key, var, node.type)
    dist = writer.factor_dist(factor_key)  # given latents come from their priors
    if not factor.term.given:  # a distribution shared by every sample: draw n of them
        shape = ", ".join(["n", *map(str, node.type.shape)])
        return [f"return {dist}.mean.expand({shape}) if mean else {dist}.sample((n,))"]
    return [f"return {dist}.mean if mean else {dist}.sample()"]


def autoregressive_draw(ms: ModelSource, key: str, var: str, t) -> list[str]:
    """Ancestral sampling over the positions of the order (graph/passes/order.py): the features of a
    vector, the rows of a sequence [T, C] (a row's C values drawn together), the pixels of an image
    [C, H, W] in raster order. Each position costs one pass of the block on the whole batch, except the
    MaskedLinear layers of a MADE, which compute each unit once over all positions (MadeSteps)."""
    info = ms.info
    x = identifier(var)
    positions = (t.shape[1] * t.shape[2]) if len(t.shape) == 3 else t.shape[0] if len(t.shape) == 2 else t.numel
    labels = t.kind == "cat"  # labels have no mean: always drawn
    dtype = ", dtype=torch.long" if labels else ""
    program = info.node(key).program
    cached = made_positions(program) == positions
    if not ensemble_of(program).single:  # ranks over the MADE's own positions: always cached
        ms.helpers.add("MadeSteps")
        return ensemble_draw(info, key, x, t, dtype, labels, position_dist(program, var, t) if len(t.shape) < 3
                             else None)
    loop = [f"for i in range({positions}):  # one position at a time, every sample at once"]
    block_input, row = x, "h"
    if len(t.shape) == 3:
        loop.append(f"    h, w = divmod(i, {t.shape[2]})")
        rows = rows_read(program)
        if rows is not None and rows + 1 < t.shape[1]:  # a pass over the rows the pixel reads only
            loop.append(f"    top = max(h - {rows}, 0)  # the block reads at most {rows} rows above a pixel")
            block_input, row = f"{x}[:, :, top:h + 1]", "h - top"
    loop += _indented(_step(info.call(key, [block_input]), position_dist(program, var, t, row), x, len(t.shape), row,
                            labels))
    if cached:
        ms.helpers.add("MadeSteps")
        loop = [f"with MadeSteps(self.{info.attrs[key]}) as steps:  # each MADE unit computed once, at the "
                "step of its degree", *_indented([loop[0], "    steps.rank = i", *loop[1:]])]
    return [f"{x} = torch.zeros((n, *{tuple(t.shape)!r}){dtype}, device=self.device)", *loop, f"return {x}"]


def position_dist(program: ir.Program, var: str, t, row: str = "h") -> str | None:
    """The distribution of the values of `var` at position i alone (pixel (`row`, w) of an image),
    built by its family's per-position constructor from the parameters of the block's whole
    distribution `whole`; None where the family has none, or the data has no positions."""
    drawn = next(s.dist for s in program.stmts if isinstance(s, ir.Draw) and s.name == var)
    if drawn.position is None or not t.shape:
        return None
    at = f"[:, :, {row}, w]" if len(t.shape) == 3 else "[:, i]"
    return drawn.position.format(**{name: f"whole.base_dist.{name}{at}" for name in drawn.params})


def _step(call: str, alone: str | None, x: str, rank: int, row: str, labels: bool) -> list[str]:
    """One step of the loop: the block's distribution (`call`), the draw of position i, and its place
    in x, laid out as pixels (rank 3), rows (rank 2) or flat positions."""
    draw = "draw = dist.sample()" if labels else "draw = dist.mean if mean else dist.sample()"
    target = "[:, :, h, w]" if rank == 3 else "[:, i]"
    if alone:  # position i only, from its own parameters
        return [f"whole = {call}", f"dist = {alone}  # position i alone", draw, f"{x}{target} = draw"]
    if rank == 3:
        return [f"dist = {call}", draw, f"{x}{target} = draw[:, :, {row}, w]"]
    if rank == 2:
        return [f"dist = {call}", draw, f"{x}{target} = draw{target}"]
    return [f"dist = {call}", draw, f"{x}.view(len({x}), -1)[:, i] = draw.reshape(len({x}), -1)[:, i]"]


def made_positions(program: ir.Program) -> int | None:
    """The positions over which the block's MaskedLinear layers have MADE degrees; None without any."""
    return analyze_network(program).positions if masked_layers(program) else None


def rows_read(program: ir.Program) -> int | None:
    """How many rows above its own the distribution of an image block at a pixel reads, at most: the
    sum, over the values that depend on the data, of the rows each reads (Order.rows of masked
    convolutions and shift; none for what acts within a pixel or a row). None where a value has no
    bound (attention, a reshape), the block has other inputs, or a value that does not depend on the
    data spans the image's rows (a pass over some rows could not be added to it)."""
    analysis = analyze(program)
    if analysis is None or len(program.inputs) != 1:
        return None
    total = 0
    for value, state in zip(analysis.values, analysis.states, strict=True):
        shape = getattr(value.type, "shape", ())
        if state.kind == "free":
            if len(shape) >= 2 and shape[-2] != 1:
                return None
            continue
        rows = _rows(value)
        if rows is None:
            return None
        total += rows
    return total


def _rows(value) -> int | None:
    if value.op in ("data", "join", "concat"):
        return 0
    if value.op not in ("apply", "layer"):
        return None
    order, rank = value.order, len(getattr(value.type, "shape", ()))
    if order.kind == "elementwise" or (order.kind == "mixes" and rank == 3 and all(a % 3 == 0 for a in order.axes)):
        return 0
    return order.rows if order.kind in ("causal", "stacks") else None


def _indented(lines: list[str]) -> list[str]:
    return [f"    {line}" for line in lines]


def ensemble_draw(info, key: str, x: str, t, dtype: str, labels: bool, alone: str | None) -> list[str]:
    """A MADE ensemble (graph/passes/ensembles.py): each sample draws its component k uniformly, then
    its positions one at a time in order k (the features of a vector, the rows of a sequence, or the
    pixels of a one-channel image flattened); the samples of one component are drawn together.
    `alone`: position i's distribution by itself (position_dist), for a vector or a sequence."""
    block = f"self.{info.attrs[key]}"
    rank = 2 if len(t.shape) == 2 else 1  # a one-channel image's pixels as flattened
    step = _step(info.call(key, [f"{x}_k"]), alone, f"{x}_k", rank, "h", labels)
    return [f"{x} = torch.zeros((n, *{tuple(t.shape)!r}){dtype}, device=self.device)",
            f"components = torch.randint(len({block}.ranks), (n,), device=self.device)",
            "try:",
            "    for k in components.unique().tolist():  # the samples of component k, in its order",
            "        rows = (components == k).nonzero().flatten()",
            f"        {x}_k = {x}[rows]",
            f"        {block}.held_component = k",
            f"        with MadeSteps({block}, k) as steps:  # each unit computed once, at the step of its degree",
            f"            for steps.rank, i in enumerate({block}.ranks[k].argsort().tolist()):",
            *(f"                {line}" for line in step),
            f"        {x}[rows] = {x}_k",
            "finally:",
            f"    {block}.held_component = None",
            f"return {x}"]


def likelihoods(ms: ModelSource) -> Likelihood:
    """log_prob / log_weights / elbo / bound where the model defines them; returns what exists."""
    info = ms.info
    found: dict[str, str] = {}
    exact = exact_likelihood(info)
    if exact:
        var, given, code = exact
        if code.startswith("ensemble_log_prob("):
            ms.helpers.add("ensemble_log_prob")
        term = f"{var} | {', '.join(given)}" if given else var
        ms.method("log_prob(self, batch)", f"log p({term}) per sample, exact (nats)",
                  [f'{identifier(v)} = batch["{v}"]' for v in (var, *given)] + [f"return {code}"])
        found["log_prob"] = var
        found["given"] = given
    weights = hierarchical_weights(info) or importance_weights(info)  # latents given latents: codegen/weights.py
    if weights:
        var, body = weights
        ms.method("log_weights(self, batch, k)", f"log p({var}, z) - log q(z | {var}) for k draws "
                  "z ~ q: shape [k, batch] (the IWAE bound is their log-mean-exp)", body)
        ms.method("elbo(self, batch)", "the evidence lower bound per sample (nats)",
                  ["return self.log_weights(batch, 1)[0]"])
        found["log_weights"] = var
    for key, node in _nodes(info, "diffusion"):
        body = diffusion_bound(info, key)
        if body:
            ms.method("bound_terms(self, batch)", f"the terms of the negative variational bound of {node.var} per "
                      "sample (nats), [n, 3]: L_0, the sum of L_1 .. L_(T-1), L_T", body)
            ms.method("bound(self, batch)", f"the negative variational bound of {node.var} per sample (nats)",
                      ["return self.bound_terms(batch).sum(-1)"])
            found["bound"] = node.var
    return Likelihood(**found)


def classifier(ms: ModelSource) -> Classifier | None:
    """`predict(batch)`: the label of lowest energy F(x, y) for each row, where the model has an
    energy of a data variable and its label (graph/passes/roles.py)."""
    found = label_energy(ms.info.graph)
    if found is None:
        return None
    energy, x, y = found
    classes = ms.info.node(y).type.classes
    ms.helpers.add("each_label")
    ms.method("predict(self, batch)", f"the label {y} of lowest energy {energy}({x}, {y}) for each row of {x}",
              [f"return each_label({ms.info.callable(energy)}, batch[\"{x}\"], {classes}).argmin(-1)"])
    return Classifier(x=x, y=y)


def exact_likelihood(info) -> tuple[str, tuple[str, ...], str] | None:
    """(the variable, what its density is given, code of log p) where it is exact."""
    for _, flow in _nodes(info, "flow"):
        args = ", ".join(map(identifier, (flow.var, *flow.given)))
        return flow.var, flow.given, f"self.log_p_{identifier(flow.var)}({args})"
    for key, node in _nodes(info, "factor"):
        var = node.term.vars[0]
        x = identifier(var)
        if node.role == "autoregressive" and info.node(var).kind == "data":  # not a latent's prior
            if ensemble_of(node.program).masks > 1:  # the mixture of the K components, exactly
                return var, (), (f"ensemble_log_prob(self.{info.attrs[key]}, "
                                 f"lambda: {info.call(key, [x])}.log_prob({x}))")
            return var, (), f"{info.call(key, [x])}.log_prob({x})"
        if node.role == "observe" and node.term.given and all(
                info.node(g).kind == "latent" and info.node(g).type.kind == "cat" for g in node.term.given):
            return var, (), f"self.log_p_{x}({x})"
        if node.role == "observe" and not node.term.given:  # p(x) is the factor itself
            return var, (), f"{info.call(key, [])}.log_prob({x})"
    return None


def importance_weights(info) -> tuple[str, list[str]] | None:
    encoders = {k: n for k, n in _nodes(info, "factor") if n.role == "encoder"}
    decoders = [(k, n) for k, n in _nodes(info, "factor") if n.role in ("decoder", "observe")
                and any(g in {e.term.vars[0] for e in encoders.values()} for g in n.term.given)]
    if not encoders or len(decoders) != 1:
        return None
    dec_key, decoder = decoders[0]
    var = decoder.term.vars[0]
    body: list[str] = []
    data = sorted({v for e in encoders.values() for v in e.term.given} | {var}
                  | {g for g in decoder.term.given if info.node(g).kind == "data"})
    for d in data:
        body.append(f'{identifier(d)} = batch["{d}"]')
    log_q, log_prior = [], []
    for key, enc in encoders.items():
        z = identifier(enc.term.vars[0])
        q = info.call(key, [identifier(i) for i in info.inputs[key]])
        body += [f"q_{z} = {q}", f"{z} = q_{z}.sample((k,))  # [k, batch, ...]"]
        log_q.append(f"q_{z}.log_prob({z})")
        log_prior.append(f"self.prior_{z}().log_prob({z})")
    args = []
    for name in info.inputs[dec_key]:
        i = identifier(name)
        if info.node(name).kind == "latent":
            args.append(f"{i}.flatten(0, 1)")
        else:
            args.append(f"{i}.repeat(k, *([1] * ({i}.dim() - 1)))")
    x = identifier(var)
    body.append(f"{x}_k = {x}.repeat(k, *([1] * ({x}.dim() - 1)))  # [k * batch, ...], k-major like the draws")
    body.append(f"log_px = {info.call(dec_key, args)}.log_prob({x}_k).view(k, -1)")
    body.append(f"return log_px + {' + '.join(log_prior)} - {' - '.join(log_q)}")
    return var, body
