"""Assemble the generated file: header, imports, the helpers used, module classes, the model
class, and SPEC (what the trainer needs: data, steps, settings, samples)."""

from __future__ import annotations

import ast
import hashlib
import math
import pprint
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import networkx as nx

from gendsl.codegen.helpers import MODULES
from gendsl.codegen.methods import ModelInfo
from gendsl.codegen.model import ModelSource
from gendsl.codegen.modules import ModuleClass, class_name, flow_class, network_class
from gendsl.codegen.names import MODULE_ATTRIBUTES, Names
from gendsl.codegen.sampling import autoregressive_priors, classifier, likelihoods, samples
from gendsl.graph import ir
from gendsl.plugins import loaded_plugins
from gendsl import spec as contract
from gendsl.spec import Classifier, DataVar, Likelihood, Metric, RunSpec, Sample, Step, Tensor, Train
from gendsl.types import TensorType

VERSION = "0.1.0"
IMPORTS = """import math

import torch
import torch.distributions as D
import torch.nn as nn
import torch.nn.functional as F

D.Distribution.set_default_validate_args(False)  # shapes and supports were checked by gendsl"""


@dataclass
class Generated:
    source: str
    class_name: str
    spec: RunSpec


def spec_hash(text: str, params: dict, plugins: tuple[str, ...] = ()) -> str:
    """Identifies a spec, its param values and the plugins it was compiled with (their digests):
    checkpoints carry it to catch a changed spec or plugin."""
    digest = hashlib.sha256(text.encode("utf-8"))
    digest.update(repr(sorted(params.items())).encode("utf-8"))
    if plugins:
        digest.update(repr(plugins).encode("utf-8"))
    return digest.hexdigest()[:16]


def allocate_attributes(graph: nx.DiGraph) -> dict[str, str]:
    names = Names(MODULE_ATTRIBUTES | {"_anchor"})
    attrs = {}
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind in ("net", "flow", "tensor", "diffusion", "sampler"):
            attrs[key] = names.fresh(key, attr=True)
        elif node.kind == "factor":
            attrs[key] = names.fresh(f"{node.density}_{'_'.join(node.term.vars)}", attr=True)
    return attrs


def module_classes(graph: nx.DiGraph) -> dict[str, ModuleClass]:
    """One class per network, factor and flow, in the spec's order. They are generated callees
    first: a module that calls a network also takes (and passes on) what that network takes."""
    modules: dict[str, ModuleClass] = {}
    for key in _callees_first(graph):
        node = graph.nodes[key]["data"]
        callees = {k: m.free for k, m in modules.items()}
        if node.kind == "net":
            modules[key] = network_class(key, node, class_name(node.role.capitalize(), key),
                                         f"{node.role} {key}: {node.type.describe()}", callees)
        elif node.kind == "factor":
            title = f"{node.role} {node.term.describe()}: the distribution of {', '.join(node.term.vars)}"
            modules[key] = network_class(key, node, class_name(node.role.capitalize(),
                                                               f"{node.density}_{'_'.join(node.term.vars)}"),
                                         title, callees)
        elif node.kind == "flow":
            modules[key] = flow_class(key, node)
    return {k: modules[k] for k in graph if k in modules}


def _callees_first(graph: nx.DiGraph) -> list[str]:
    """Networks, factors and flows ordered so that every network comes before those that call it
    (the checker refused cycles), ties in the spec's order."""
    modules = [k for k, d in graph.nodes(data=True) if d["data"].kind in ("net", "factor", "flow")]
    calls = nx.DiGraph()
    calls.add_nodes_from(modules)
    for key in modules:
        program = graph.nodes[key]["data"].program
        for expr in ir.walk_program(program) if program is not None else ():
            if isinstance(expr, ir.CallNet) and expr.net in calls:
                calls.add_edge(expr.net, key)
    order = {k: i for i, k in enumerate(modules)}
    return list(nx.lexicographical_topological_sort(calls, key=order.__getitem__))


def helper_definitions() -> dict[str, tuple[ast.AST, str]]:
    """Every helper's definition and its module's text, in the order of the helper modules, then
    the classes and functions of the loaded plugins' implementation files (their names were
    checked to differ from the helpers' when the plugins loaded)."""
    texts = [resources.files("gendsl.codegen.helpers").joinpath(f"{module}.py").read_text(encoding="utf-8")
             for module in MODULES]
    texts += [plugin.implementation_text for plugin in loaded_plugins() if plugin.implementation]
    defs = {}
    for text in texts:
        for node in ast.parse(text).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defs[node.name] = (node, text)
    return defs


def helper_sources(names: set[str]) -> list[str]:
    """Source of the named helpers and of every helper they use, in the helpers' order."""
    defs = helper_definitions()
    unknown = sorted(set(names) - set(defs))
    if unknown:  # a registry entry names a helper that does not exist: a bug in gendsl, not in the spec
        raise LookupError(f"generated code needs helpers that gendsl/codegen/helpers/ lacks: {', '.join(unknown)}")
    wanted, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        node = defs[name][0]
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        used |= {b.id for b in getattr(node, "bases", []) if isinstance(b, ast.Name)}
        todo += [u for u in used if u in defs and u not in wanted]
    out = []
    for name, (node, text) in defs.items():
        if name in wanted:
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            out.append("\n".join(text.splitlines()[start - 1: node.end_lineno]))
    if "frozen" in wanted:
        out.insert(0, "import contextlib")
    return out


def generate(graph: nx.DiGraph, spec_path: str, spec_text: str) -> Generated:
    """Checked graph -> the source of a standalone PyTorch module (deterministic)."""
    attrs = allocate_attributes(graph)
    modules = module_classes(graph)
    data_names = [k for k, d in graph.nodes(data=True) if d["data"].kind == "data"]
    info = ModelInfo(graph=graph, attrs=attrs, free={k: m.free for k, m in modules.items()},
                     inputs={k: m.inputs for k, m in modules.items()}, first_data=data_names[0] if data_names else "")
    model_name = class_name("", graph.graph["model"])
    ms = ModelSource(info, model_name, modules)
    init = ms.init_lines()
    ms.priors()
    ms.marginals()
    ms.losses()
    steps = ms.steps()
    autoregressive_priors(ms)
    sample_info = samples(ms)
    found = likelihoods(ms)
    classifies = classifier(ms)
    helpers = set(ms.helpers)
    for module in modules.values():
        helpers |= module.helpers
    params = graph.graph.get("params", {})
    spec = spec_metadata(graph, spec_path, spec_text, steps, sample_info, found, classifies)
    model = "\n".join([
        f"class {model_name}(nn.Module):",
        f'    """model {graph.graph["model"]}, compiled from {Path(spec_path).name}"""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        *(f"        {line}" for line in init),
        "",
        "    @property",
        "    def device(self):",
        "        return self._anchor.device",
        "",
        "    def forward(self, method, batch):",
        '        """Run one of the methods below (DistributedDataParallel calls models through forward)."""',
        "        return getattr(self, method)(batch)",
        "",
        "\n\n".join(ms.methods),
    ])
    header = [f"# Generated by gendsl {VERSION} from {Path(spec_path).name} (model {graph.graph['model']}).",
              "# Standalone: needs only torch. Edit the spec and recompile rather than editing this file.",
              "# Comments `name.gen:LINE` point back to the spec."]
    if params:
        header.append("# params: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    if spec.plugins:
        header.append("# plugins (their classes are copied below): " + ", ".join(spec.plugins))
    parts = ["\n".join(header), IMPORTS, *helper_sources(helpers),
             *(m.source for m in modules.values()), model,
             f"def build():\n    \"\"\"A fresh {model_name} with random weights.\"\"\"\n    return {model_name}()",
             "SPEC = " + pprint.pformat(spec.model_dump(mode="json", exclude_defaults=True), width=100,
                                        sort_dicts=False)]
    return Generated(source="\n\n\n".join(parts) + "\n", class_name=model_name, spec=spec)


def _tensor(t: TensorType) -> dict:
    return {"kind": t.kind, "shape": t.shape, "classes": t.classes}


def spec_metadata(graph: nx.DiGraph, spec_path: str, text: str, steps: list[Step],
                  sample_info: dict[str, Sample], found: Likelihood, classifies: Classifier | None = None) -> RunSpec:
    """The contract the runtime reads (gendsl/spec.py)."""
    params = graph.graph.get("params", {})
    train = graph.graph.get("train")
    plugins = loaded_plugins()
    return RunSpec(
        version=contract.VERSION, model=graph.graph["model"], spec=Path(spec_path).name,
        hash=spec_hash(text, params, tuple(p.digest for p in plugins)), params=dict(params),
        plugins=tuple(str(p.path.resolve()) for p in plugins),
        data=tuple(DataVar(name=k, **_tensor(n.type), group=n.group, position=n.position, source=n.source,
                           args=dict(n.source_args), **_bounds(graph, k)) for k, n in _nodes_of(graph, "data")),
        latents={k: Tensor(**_tensor(n.type)) for k, n in _nodes_of(graph, "latent")},
        losses=tuple(k for k, _ in _nodes_of(graph, "loss")),
        steps=tuple(steps),
        train=Train(**train.model_dump(exclude={"span", "optimizer", "schedule"})) if train is not None else None,
        samples=sample_info,
        metrics=tuple(Metric(name=n.metric, alias=k.split(":", 1)[1], options=dict(n.options))
                      for k, n in _nodes_of(graph, "metric")),
        likelihood=found, classifier=classifies,
        pack=math.lcm(*(n.pack for _, n in _nodes_of(graph, "net"))))


def _bounds(graph: nx.DiGraph, var: str) -> dict:
    """The range the family scoring a real data variable needs (Bernoulli: [0, 1]), which only the
    data can show: the loader checks it."""
    from gendsl.library.distributions import support_of

    for _, node in _nodes_of(graph, "factor"):
        for stmt in node.program.stmts if node.program is not None else ():
            if isinstance(stmt, ir.Draw) and stmt.name == var and graph.nodes[var]["data"].type.kind == "real":
                bounds = support_of(stmt.dist.family).bounds
                if bounds is not None:
                    return {"bounds": bounds, "scored_by": stmt.dist.family}
    return {}


def _nodes_of(graph: nx.DiGraph, kind: str):
    return [(k, d["data"]) for k, d in graph.nodes(data=True) if d["data"].kind == kind]
