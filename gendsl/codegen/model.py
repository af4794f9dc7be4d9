"""The model class: submodules, shared tensors, priors, one method per loss, per train step and
per sample, and the likelihood methods evaluation uses."""

from __future__ import annotations

from gendsl.codegen.exprs import literal
from gendsl.codegen.methods import MethodWriter, ModelInfo, mean_if_batched
from gendsl.codegen.modules import where
from gendsl.codegen.names import identifier, suffix
from gendsl.graph import ir
from gendsl.graph.dependencies import Reach
from gendsl.types import TensorType


def _shape(t: TensorType) -> str:
    return repr(tuple(t.shape))


def _nodes(info: ModelInfo, kind: str):
    return [(k, d["data"]) for k, d in info.graph.nodes(data=True) if d["data"].kind == kind]


class ModelSource:
    """Accumulates the model class source and the helpers its methods call."""

    def __init__(self, info: ModelInfo, class_name: str, modules: dict):
        self.info = info
        self.class_name = class_name
        self.modules = modules
        self.helpers: set[str] = set()
        self.methods: list[str] = []

    def method(self, signature: str, doc: str, body: list[str], decorator: str = "") -> None:
        lines = [f"    {decorator}"] if decorator else []
        lines += [f"    def {signature}:", f'        """{doc}"""', *(f"        {line}" for line in body)]
        self.methods.append("\n".join(lines))

    # ---- __init__ ----
    def init_lines(self) -> list[str]:
        lines = ['self.register_buffer("_anchor", torch.zeros(()))  # follows the model across devices']
        for key, module in self.modules.items():
            lines.append(f"self.{self.info.attrs[key]} = {module.class_name}()")
        for key, node in _nodes(self.info, "tensor"):
            lines.append(f"self.{self.info.attrs[key]} = nn.Parameter({init_code(node)})  # {where(node.span)}")
        for key, node in _nodes(self.info, "latent"):
            lines += self.prior_buffers(key, node)
        for key, node in _nodes(self.info, "diffusion"):
            self.helpers.add("GaussianDiffusion")
            p = node.process
            betas = p["betas"]
            args = ", ".join(literal(v) for k, v in betas.items() if k != "name")
            lines.append(f"self.{self.info.attrs[key]} = GaussianDiffusion({p['steps']}, "
                         f"GaussianDiffusion.{betas['name']}({p['steps']}, {args}), levels={p.get('levels', 0)})"
                         f"  # {where(node.span)}")
        for key, node in _nodes(self.info, "sampler"):
            self.helpers.add(node.sampler)
            options = ", ".join(f"{k}={literal(v)}" for k, v in node.options.items())
            lines.append(f"self.{self.info.attrs[key]} = {node.sampler}({_shape(node.type)}, {options})"
                         f"  # {where(node.span)}")
        return lines

    def prior_buffers(self, key: str, node) -> list[str]:
        lines = []
        for pname, value in (node.prior.params.items() if node.prior is not None else ()):
            if isinstance(value, ir.Const):
                shape = _shape(node.type) if node.type.kind != "cat" else "()"
                lines.append(f'self.register_buffer("{identifier(key)}_{pname}", '
                             f"torch.full({shape}, {float(value.value)!r}))  # prior of {key}")
        return lines

    # ---- priors and marginals ----
    def priors(self) -> None:
        for key, node in _nodes(self.info, "latent"):
            if node.prior is None:
                continue
            parts = {}
            for pname, value in node.prior.params.items():
                if isinstance(value, ir.Const):
                    parts[pname] = f"self.{identifier(key)}_{pname}"
                else:
                    writer = MethodWriter(self.info, "loss")
                    parts[pname] = writer.code(value)
            code = node.prior.code.format(**parts)
            rank = len(node.type.shape) if node.type.kind != "cat" else 0
            dist = f"D.Independent({code}, {rank})" if rank else code
            self.method(f"prior_{identifier(key)}(self)", f"p({key}): {node.prior.family} over "
                        f"{node.type.describe()}  ({where(node.span)})", [f"return {dist}"])

    def marginals(self) -> None:
        for key, node in _nodes(self.info, "flow"):
            x = identifier(node.var)
            self.method(f"log_p_{x}(self, {x})", f"log p({node.var}) = log p(z = {key}({node.var})) + "
                        "log |det dz/dx|: exact", [
                            f"z, logdet = self.{self.info.attrs[key]}({x})",
                            f"return self.prior_{identifier(node.latent)}().log_prob(z) + logdet"])
        for key, node in _nodes(self.info, "factor"):
            if node.role != "observe" or not node.term.given:
                continue
            if not all(self.info.node(g).kind == "latent" and self.info.node(g).type.kind == "cat"
                       for g in node.term.given):
                continue
            self.enumerated_marginal(key, node)

    def enumerated_marginal(self, key: str, node) -> None:
        var = identifier(node.term.vars[0])
        given = node.term.given
        body = []
        terms = []
        for i, latent in enumerate(given):
            k = self.info.node(latent).type.classes
            view = ["1"] * (len(given) + 1)
            view[i] = str(k)
            body.append(f"{identifier(latent)} = torch.arange({k}, device={var}.device).view({', '.join(view)})"
                        f"  # every value of {latent}")
            terms.append(f"self.prior_{identifier(latent)}().log_prob({identifier(latent)})")
        args = [identifier(g) for g in self.info.inputs[key]] + \
            [f"self.{self.info.attrs[f]}" for f in self.info.free.get(key, [])]
        terms.append(f"self.{self.info.attrs[key]}({', '.join(args)}).log_prob({var})")
        dims = tuple(range(len(given)))
        body.append(f"log_joint = {' + '.join(terms)}")
        body.append(f"return torch.logsumexp(log_joint, dim={dims if len(dims) > 1 else dims[0]})")
        self.method(f"log_p_{var}(self, {var})", f"log p({node.term.vars[0]}) = log sum over "
                    f"{', '.join(given)} of p({', '.join(given)}) p({node.term.describe()[2:-1]}): exact",
                    body)

    # ---- losses and steps ----
    def loss_body(self, node, over: set[str] | None) -> tuple[list[str], MethodWriter]:
        writer = MethodWriter(self.info, "loss", over)
        result = mean_if_batched(writer.code(node.expr), node.expr)
        self.helpers |= writer.helpers
        return writer.lines + [f"return {result}"], writer

    def losses(self) -> None:
        for key, node in _nodes(self.info, "loss"):
            body, _ = self.loss_body(node, None)
            text = " ".join(_source_text(self.info, node.decl.value.span).split())
            self.method(f"loss_{suffix(key)}(self, batch)", f"{key} = {text}  ({where(node.span)})", body)

    def steps(self) -> list[dict]:
        reach = Reach(self.info.graph)
        steps = []
        for key, node in _nodes(self.info, "step"):
            name = key.split(":", 1)[1]
            over = set(node.over)
            loss = self.info.node(node.loss)
            frozen = sorted(k for k in reach.of_node(node.loss) if k not in over
                            and k in self.info.attrs and getattr(self.info.node(k), "params", 0) > 0)
            body, writer = self.loss_body(loss, over)
            cuts = any(line.startswith("with torch.no_grad") for line in writer.lines)
            if frozen:
                self.helpers.add("frozen")
                modules = ", ".join(f"self.{self.info.attrs[k]}" for k in frozen)
                body = [f"with frozen({modules}):  # not updated by this step: no weight gradients",
                        *(f"    {line}" for line in body)]
            elif not cuts:
                body = [f"return self.loss_{suffix(node.loss)}(batch)"]
            over_text = ", ".join(_label(self.info, k) for k in node.over) or "nothing"
            self.method(f"step_{suffix(name)}(self, batch)", f"step {name}: minimize {node.loss} over "
                        f"{over_text}  ({where(node.span)})", body)
            steps.append({"name": name, "method": f"step_{suffix(name)}", "loss": node.loss,
                          "over": [self.info.attrs[k] for k in node.over if k in self.info.attrs],
                          "repeat": node.repeat, "optimizer": dict(node.optimizer)})
        return steps


def init_code(node) -> str:
    shape = _shape(node.type)
    init = node.init
    name = init.get("name", "zeros")
    if name == "zeros":
        return f"torch.zeros({shape})"
    if name == "ones":
        return f"torch.ones({shape})"
    if name == "normal":
        return f"torch.randn({shape}) * {init['std']!r} + {init['mean']!r}"
    if name == "uniform":
        return f"torch.empty({shape}).uniform_({init['low']!r}, {init['high']!r})"
    return f"torch.full({shape}, {init['value']!r})"


def _source_text(info: ModelInfo, span) -> str:
    source = info.graph.graph.get("sources", {}).get(span.file)
    if source is None:
        return ""
    lines = source.lines[span.line - 1: span.end_line]
    if len(lines) == 1:
        return lines[0][span.col - 1: span.end_col - 1]
    lines[0], lines[-1] = lines[0][span.col - 1:], lines[-1][: span.end_col - 1]
    return " ".join(lines)


def _label(info: ModelInfo, key: str) -> str:
    node = info.node(key)
    return node.term.describe() if node.kind == "factor" else key
