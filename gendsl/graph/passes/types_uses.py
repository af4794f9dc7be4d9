"""Pass 3, second half: what uses the declarations: samplers, losses, samples, train steps and
settings, metrics. Mixed into the type pass of types.py."""

from __future__ import annotations

import networkx as nx

from gendsl import ast
from gendsl.graph.constants import evaluate_or_report
from gendsl.graph.nodes import TrainConfig
from gendsl.graph.passes.expressions import Binding, Scope, compatible, is_scalar
from gendsl.library.signature import EntryError, bind, call_rule, format_value
from gendsl.library.training import METRICS, OPTIMIZERS, SAMPLERS, SCHEDULES, SETTINGS
from gendsl.types import LOSS_VALUE, UNKNOWN, NetType, ObjectType, TensorType


class UsesMixin:
    def samplers(self) -> None:
        for key, node in self.nodes("sampler"):
            found = self.registry_value(node.decl.sampler, SAMPLERS, "sampler")
            call = node.decl.sampler
            first = call.args[0] if isinstance(call, ast.Call) and call.args else None
            target = first.id if isinstance(first, ast.Name) else ""
            binding = self.model.get(target)
            target_type = None
            if found and (binding is None or binding.kind != "net"):
                self.report("E311", f"{found.name} needs an energy network as its first argument",
                            (first or call).span, hint="write `sampler neg = Langevin(E, steps=60)` with "
                                                       "`energy E(x: real[2]) -> real { ... }`")
            given = found.values.get("given") if found else None
            given = self.sampler_given(found.name, given, call) if given is not None else None
            if found and binding is not None and binding.kind == "net" and isinstance(binding.type, NetType):
                target_type = self.sampled_input(found.name, binding.type, first, given)
            options = {k: v for k, v in found.values.items() if k not in ("energy", "given")} if found else {}
            self.model[key] = Binding("sampler", ObjectType(kind="sampler", name=key, value=target_type), key)
            self.set(key, sampler=found.name if found else "", target=target, options=options, type=target_type,
                     given=given[0] if given else "")

    def sampler_given(self, sampler: str, given, call: ast.Call) -> tuple[str, TensorType] | None:
        """`given=y`: the data a conditional sampler draws x given (name and type); None after reporting."""
        where = next(k.value.span for k in call.kwargs if k.name == "given")
        binding = self.model.get(getattr(given, "name", ""))
        if binding is None or binding.kind != "data":
            self.report("E311", f"{sampler} draws x given data, but given={format_value(given)} is "
                        + (binding.kind if binding else "not a variable"), where, label="not data",
                        hint="write given=y with `data x: ..., y: cat[K] from ...` and an energy E(x, y)")
            return None
        return given.name, binding.type

    def sampled_input(self, sampler: str, energy: NetType, where: ast.Expr,
                      given: tuple[str, TensorType] | None = None) -> TensorType | None:
        """The type a sampler draws: the first input of its energy, a real-valued tensor (Langevin
        follows the energy's gradient with respect to it); an energy of two inputs is sampled given
        the second (`given=y`). None after reporting."""
        wanted = 2 if given else 1
        if len(energy.inputs) != wanted:
            inputs = ", ".join(t.describe() for t in energy.inputs)
            hint = (f"declare `energy {energy.name}(x: ..., y: ...) -> real` to draw x given y" if given else
                    f"{sampler} draws the one input x of E(x): declare `energy {energy.name}(x: ...) -> real`"
                    + (", or draw x given the other input with given=y" if len(energy.inputs) == 2 else ""))
            self.report("E311", f"{sampler} needs an energy of {'two inputs' if given else 'exactly one input'}, "
                        f"but {energy.name} takes {len(energy.inputs)} ({inputs})", where.span,
                        label=f"{len(energy.inputs)} inputs", hint=hint)
            return None
        if given and not compatible(given[1], energy.inputs[1]):
            self.report("E311", f"{energy.name}'s second input is {energy.inputs[1].describe()}, but {sampler} is "
                        f"given {given[0]}: {given[1].describe()}", where.span, label="given another type",
                        hint=f"give {energy.name} a second input of {given[0]}'s type")
            return None
        x = energy.inputs[0]
        if x is UNKNOWN:
            return None
        if not isinstance(x, TensorType) or x.kind not in ("real", "bin"):
            self.report("E311", f"{sampler} moves its samples along the energy's gradient, so the input of "
                        f"{energy.name} must be real-valued, but it is {x.describe()}", where.span,
                        hint="declare the input `real[...]`; categories (cat) cannot be sampled by Langevin "
                             "dynamics")
            return None
        return x

    def loss_order(self) -> list[str]:
        losses = [k for k, _ in self.nodes("loss")]
        try:
            order = {k: i for i, k in enumerate(self.graph)}
            return list(nx.lexicographical_topological_sort(self.graph.subgraph(losses), key=order.__getitem__))
        except nx.NetworkXUnfeasible:
            cycle = [u for u, _ in nx.find_cycle(self.graph.subgraph(losses))]
            self.report("E234", f"losses refer to each other in a cycle: {' -> '.join(cycle + [cycle[0]])}",
                        self.graph.nodes[cycle[0]]["data"].span, hint="a loss cannot use itself")
            return losses

    def losses(self) -> None:
        for key in self.loss_order():
            node = self.graph.nodes[key]["data"]
            value = self.typer.expr(node.decl.value, Scope(context="loss", owner=key))
            t = value.type
            if t is not UNKNOWN and not is_scalar(t):
                self.report("E223", f"a loss must be one number per sample (or per batch), but '{key}' is "
                            f"{t.describe()}", node.decl.value.span, label=t.describe(),
                            hint="reduce it: mse(a, b), mean(...), or -log p(x | z) sums over dimensions")
            self.model[key] = Binding("loss", t if t is UNKNOWN else LOSS_VALUE, key)
            self.set(key, expr=value)

    def samples(self) -> None:
        for key, node in self.nodes("sample"):
            decl: ast.SampleDecl = node.decl
            scope = Scope(context="sample", owner=key)
            if decl.op == "~":
                value = self.typer.densities.draw(decl, scope)
            else:
                value = self.typer.expr(decl.value, scope)
            var = self.model.get(decl.name.name)
            if var is not None and value.type is not UNKNOWN and var.type is not UNKNOWN:
                if var.kind not in ("data", "latent") or not compatible(value.type, var.type.model_copy(
                        update={"kind": "real"}) if var.type.kind == "bin" else var.type):
                    self.report("E231", f"sample {decl.name.name} gives {value.type.describe()} but "
                                f"'{decl.name.name}' is {var.type.describe()}", decl.value.span,
                                hint="a sample has the type of the variable it imitates")
            self.set(key, expr=value)

    def steps(self) -> None:
        train = self.graph.graph.get("train_decl")
        steps = self.nodes("step")
        if train is not None and any(s.decl.shorthand for _, s in steps) and len(steps) > 1:
            self.report("E314", "a train block has either one `minimize LOSS` or named steps, not both",
                        train.span, hint="write every step as `step NAME: minimize LOSS over NETS`")
        for key, node in steps:
            decl: ast.TrainStep = node.decl
            optimizer = None
            if decl.optimizer is not None:
                found = self.registry_value(decl.optimizer, OPTIMIZERS, "optimizer")
                optimizer = found.configured() if found else None
            repeat = 1
            if decl.repeat is not None:
                ok, value = evaluate_or_report(decl.repeat, self.params, self.diagnostics, "a repeat count",
                                               symbols=False)
                if ok and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                    self.report("E229", f"repeat needs a positive int, got {value!r}", decl.repeat.span)
                elif ok:
                    repeat = value
            self.set(key, loss=decl.loss.name, over=tuple(o.name for o in decl.over), optimizer=optimizer,
                     repeat=repeat)

    def train_config(self) -> None:
        train = self.graph.graph.get("train_decl")
        if train is None:
            self.graph.graph["train"] = None
            return
        values = {"span": train.span}
        spans = {}
        for setting in train.settings:
            spans[setting.name.name] = setting.span
            name = setting.name.name
            spec = SETTINGS.get(name)
            if spec is None:
                continue
            if spec.kind in ("optimizer", "schedule"):
                registry = OPTIMIZERS if spec.kind == "optimizer" else SCHEDULES
                found = self.registry_value(setting.value, registry, spec.kind)
                if found:
                    values[name] = found.configured()
                continue
            ok, value = evaluate_or_report(setting.value, self.params, self.diagnostics, f"`{name}`",
                                           symbols=False)
            if ok:
                checked = self.setting_value(setting, spec, value)
                if checked is not None:
                    values[name] = checked
        if "epochs" in values and "steps" in values:
            from gendsl.diagnostics import Note

            self.report("E313", "give either `epochs` or `steps`, not both", spans["steps"],
                        notes=[Note(message="epochs given here", span=spans["epochs"])],
                        hint="epochs count passes over the data; steps count optimizer rounds")
        elif "epochs" not in values and "steps" not in values:
            self.report("E313", "the train block needs `epochs N` or `steps N`", train.span,
                        hint="e.g. `epochs 10` or `steps 5000`; the command line can override it")
        self.needs_validation(values, spans)
        self.graph.graph["train"] = TrainConfig(**values)

    def needs_validation(self, values: dict, spans: dict) -> None:
        """`patience` and the `plateau` schedule act on valid losses: `validate_every 0` leaves none."""
        if values.get("validate_every") != 0:
            return
        from gendsl.diagnostics import Note

        users = {"patience": "`patience`"} if values.get("patience") else {}
        if "schedule" in values and values["schedule"].entry == "plateau":
            users["schedule"] = "the `plateau` schedule"
        for name, what in users.items():
            self.report("E238", f"{what} acts on valid losses, but `validate_every 0` turns validation off",
                        spans[name], notes=[Note(message="validation turned off here", span=spans["validate_every"])],
                        hint="leave out `validate_every 0` (validation is cheap: the first 2,000 valid rows), or "
                             f"drop {what}")

    def setting_value(self, setting, spec, value):
        if spec.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        wanted = {"int": int, "float": (int, float), "bool": bool}[spec.kind]
        if isinstance(value, bool) != (spec.kind == "bool") or not isinstance(value, wanted):
            self.report("E228", f"`{setting.name.name}` needs {'an' if spec.kind == 'int' else 'a'} {spec.kind}, "
                        f"got {value!r}", setting.value.span, hint=spec.doc)
            return None
        low_ok = spec.minimum is None or value >= spec.minimum
        high_ok = spec.maximum is None or value <= spec.maximum
        if not (low_ok and high_ok):
            bounds = f">= {spec.minimum}" if spec.maximum is None else f"in [{spec.minimum}, {spec.maximum}]"
            self.report("E228", f"`{setting.name.name}` must be {bounds}, got {value}", setting.value.span,
                        hint=spec.doc)
            return None
        return float(value) if spec.kind == "float" else value

    def metrics(self) -> None:
        for key, node in self.nodes("metric"):
            decl: ast.Metric = node.decl
            if decl.name.name not in METRICS:
                continue
            args, kwargs = [], {}
            ok = True
            for a in decl.args:
                good, value = evaluate_or_report(a, self.params, self.diagnostics, "a metric option")
                ok &= good
                args.append(value)
            for k in decl.kwargs:
                good, kwargs[k.name] = evaluate_or_report(k.value, self.params, self.diagnostics, "a metric option")
                ok &= good
            if not ok:
                continue
            entry = METRICS[decl.name.name]
            values, problems = bind(decl.name.name, entry.rule, args, kwargs, skip=0)
            for message, hint in problems:
                self.report("E221", message, decl.span, hint=hint)
            if problems:
                continue
            try:
                self.set(key, options=call_rule(entry.rule, [], values, skip=0).options)
            except EntryError as exc:
                self.report("E220", exc.message, decl.span, hint=exc.hint or entry.signature)
