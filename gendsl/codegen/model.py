"""The model class: submodules, shared tensors, priors, one method per loss, per train step and
per sample, and the likelihood methods evaluation uses."""

from __future__ import annotations

import math
from typing import Any

from gendsl.codegen.chains import chain_methods
from gendsl.codegen.methods import MethodWriter, ModelInfo, mean_if_batched
from gendsl.codegen.modules import where
from gendsl.codegen.names import identifier, suffix
from gendsl.graph import ir
from gendsl.graph.dependencies import Reach
from gendsl.library.distributions import DISTRIBUTIONS
from gendsl.library.entries import Code, Configured, Registry, emitted
from gendsl.library.training import BETA_SCHEDULES, INITS, OPTIMIZERS, PROCESSES, SAMPLERS, SCHEDULES
from gendsl.spec import Step
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
            init = self.entry_code(INITS, node.init)
            lines.append(f"self.{self.info.attrs[key]} = nn.Parameter({init.fill(shape=_shape(node.type))})"
                         f"  # {where(node.span)}")
        for key, node in _nodes(self.info, "latent"):
            lines += self.prior_buffers(key, node)
        for key, node in _nodes(self.info, "diffusion"):
            steps = node.process.options["steps"]
            betas = self.entry_code(BETA_SCHEDULES, node.betas).fill(steps=steps)
            code = self.entry_code(PROCESSES, node.process).fill(betas=betas)
            lines.append(f"self.{self.info.attrs[key]} = {code}  # {where(node.span)}")
        for key, node in _nodes(self.info, "sampler"):
            code = self.entry_code(SAMPLERS, Configured(entry=node.sampler, options=node.options), energy=node.target,
                                   given=node.given or None)
            given = self.info.node(node.given).type if node.given else None
            classes = given.classes if given is not None and given.kind == "cat" else 0
            lines.append(f"self.{self.info.attrs[key]} = {code.fill(shape=_shape(node.type), classes=classes)}"
                         f"  # {where(node.span)}")
        return lines

    def entry_code(self, registry: Registry, chosen: Configured, **extra: Any) -> Code:
        """The code a registry entry emits for the options a spec chose (and the helpers it calls)."""
        code = emitted(registry, chosen, **extra)
        self.helpers.update(code.helpers)
        return code

    def prior_buffers(self, key: str, node) -> list[str]:
        lines = []
        for pname, value in (node.prior.params.items() if node.prior is not None else ()):
            if isinstance(value, ir.Const):
                event = node.prior.type.event  # the checker fitted it to the declared type
                shape = repr((*event.shape, event.classes)) if event.kind == "cat" else _shape(node.type)
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
            code = node.prior.code.format(**parts, length=node.type.shape[-1] if node.type.shape else 1)  # a chain's T
            self.helpers.update(DISTRIBUTIONS[node.prior.family].helpers)
            rank = len(node.type.shape) if node.type.kind != "cat" else 0
            dist = f"D.Independent({code}, {rank})" if rank else code
            self.method(f"prior_{identifier(key)}(self)", f"p({key}): {node.prior.family} over "
                        f"{node.type.describe()}  ({where(node.span)})", [f"return {dist}"])

    def marginals(self) -> None:
        for key, node in _nodes(self.info, "flow"):
            x = identifier(node.var)
            args = ", ".join([x, *map(identifier, node.given)])
            term = f"{node.var} | {', '.join(node.given)}" if node.given else node.var
            self.method(f"log_p_{x}(self, {args})", f"log p({term}) = log p(z = {key}({args})) + "
                        "log |det dz/dx|: exact", [
                            f"z, logdet = self.{self.info.attrs[key]}({args})",
                            f"return self.prior_{identifier(node.latent)}().log_prob(z) + logdet"])
        for key, node in _nodes(self.info, "factor"):
            if node.role != "observe" or not node.term.given:
                continue
            if not all(self.info.node(g).kind == "latent" and self.info.node(g).type.kind == "cat"
                       for g in node.term.given):
                continue
            if any(self.info.node(g).type.shape for g in node.term.given):  # a chain: summed step by step
                for method in chain_methods(self.info, key, node):
                    self.method(*method)
                self.helpers.update(("MarkovChain", "every_state", "per_step_log_prob"))
                continue
            self.enumerated_marginal(key, node)

    def enumerated_marginal(self, key: str, node) -> None:
        """log p(x) = logsumexp over every value of the discrete latents: the factor's networks run
        once on a batch of all the combinations, and x is scored against each (shape [batch, K])."""
        var = identifier(node.term.vars[0])
        given = node.term.given
        sizes = [self.info.node(g).type.classes for g in given]
        body, terms = [], []
        for i, latent in enumerate(given):
            code = f"torch.arange({sizes[i]}, device={var}.device)"
            if math.prod(sizes[i + 1:]) > 1:
                code += f".repeat_interleave({math.prod(sizes[i + 1:])})"
            if math.prod(sizes[:i]) > 1:
                code += f".repeat({math.prod(sizes[:i])})"
            body.append(f"{identifier(latent)} = {code}  # every value of {latent}" + (
                ", in every combination" if len(given) > 1 else ""))
            terms.append(f"self.prior_{identifier(latent)}().log_prob({identifier(latent)})")
        factor = self.info.call(key, [identifier(g) for g in self.info.inputs[key]])
        terms.append(f"{factor}.log_prob({var}.unsqueeze(1))")
        body.append(f"log_joint = {' + '.join(terms)}  # [batch, {math.prod(sizes)}]")
        body.append("return torch.logsumexp(log_joint, dim=1)")
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

    def steps(self) -> list[Step]:
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
            steps.append(Step(name=name, method=f"step_{suffix(name)}", loss=node.loss, repeat=node.repeat))
        self.configure_optimizers()
        return steps

    def configure_optimizers(self) -> None:
        """`configure_optimizers(total)`: each step's optimizer over what it updates, with the
        train block's learning-rate schedule over `total` rounds."""
        train = self.info.graph.graph.get("train")
        if train is None:
            return
        body, built = [], []
        for key, node in _nodes(self.info, "step"):
            name = f"opt_{suffix(key.split(':', 1)[1])}"  # never shadows `total` or a schedule helper
            params = ", ".join(self.parameters_of(k) for k in node.over)
            optimizer = self.entry_code(OPTIMIZERS, node.optimizer or train.optimizer)
            head, tail = optimizer.fill(params="\0").split("\0")  # the parameters go on a line of their own
            body += [f"{name} = {head}  # {where(node.span)}", f"    [{params}]{tail}"]
            schedule = self.entry_code(SCHEDULES, train.schedule).fill(optimizer=name, total="total")
            built.append(f'"{key.split(":", 1)[1]}": ({name}, {schedule}),')
        body += ["return {", *(f"    {line}" for line in built), "}"]
        self.method("configure_optimizers(self, total)", "{step: (optimizer, LR schedule over `total` rounds)}",
                    body)

    def parameters_of(self, key: str) -> str:
        """`*self.D.parameters()` for a module, `self.mu` for a tensor."""
        attr = f"self.{self.info.attrs[key]}"
        return attr if self.info.node(key).kind == "tensor" else f"*{attr}.parameters()"


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
