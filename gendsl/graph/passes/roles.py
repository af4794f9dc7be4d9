"""Pass 4: each role keeps its promises.

A discriminator returns one logit per sample; an energy one number per sample; a denoiser maps
(x_t, t) to x's shape; a flow is made of invertible layers; an autoregressive network keeps the
order (graph/passes/order.py); metrics fit the model they measure.
"""

from __future__ import annotations

import networkx as nx

from gendsl.diagnostics import Diagnostic, error, warning
from gendsl.graph import ir
from gendsl.graph.dependencies import Reach, trainables_of
from gendsl.graph.nodes import program_of
from gendsl.graph.passes.ensembles import check_ensembles
from gendsl.graph.passes.order import check_autoregressive
from gendsl.library.layers import LAYERS
from gendsl.library.methods import with_variances
from gendsl.library.sources import SOURCES, image_shape
from gendsl.library.training import METRICS, metric_needs
from gendsl.types import NetType, TensorType

SCALAR_ROLES = {"discriminator": ("E302", "one logit per sample"), "critic": ("E302", "one score per sample"),
                "energy": ("E303", "one energy per sample")}
INVERTIBLE_LAYERS = ", ".join(name for name, entry in LAYERS.items() if "invertible" in entry.tags)
TRAINABLE_KINDS = ("net", "factor", "flow", "tensor")


def _per_sample_scalar(t) -> bool:
    return isinstance(t, TensorType) and t.kind != "cat" and t.shape in ((), (1,))


def check_nets(graph: nx.DiGraph, diagnostics: list[Diagnostic]) -> None:
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind != "net" or not isinstance(node.type, NetType):
            continue
        out = node.type.output
        patch_map = node.role == "discriminator" and isinstance(out, TensorType) and out.rank == 3 \
            and out.shape[0] == 1 and out.kind == "real"  # PatchGAN: one logit per patch
        if node.role in SCALAR_ROLES and isinstance(out, TensorType) and not _per_sample_scalar(out) \
                and not patch_map:
            code, what = SCALAR_ROLES[node.role]
            diagnostics.append(error(code, f"{node.role} {key} must return {what}, but returns {out.describe()}",
                                     node.output_origin or node.span, label=f"output {out.describe()}",
                                     hint=("end it with Linear(1) and declare `-> real`" if node.role != "discriminator"
                                           else "end it with Linear(1) and declare `-> logit` (a discriminator "
                                                "may also return a patch map real[1, H, W])")))
        if node.role == "denoiser":
            check_denoiser(key, node, diagnostics)


def check_denoiser(key: str, node, diagnostics: list[Diagnostic]) -> None:
    inputs = node.type.inputs
    step = TensorType(kind="step")
    label = len(inputs) == 3 and isinstance(inputs[2], TensorType) and inputs[2].kind == "cat" and inputs[2].batched
    # the output is x_t's type, or twice its first axis for learned variances (checked against the
    # diffusion where it is used, gendsl/library/methods.py)
    out = node.type.output
    fits = bool(inputs) and (out == inputs[0] or isinstance(inputs[0], TensorType) and out == with_variances(inputs[0]))
    if len(inputs) not in (2, 3) or inputs[1] != step or not fits or (len(inputs) == 3 and not label):
        diagnostics.append(error("E310", f"denoiser {key} must map (x_t, t: step) or (x_t, t: step, y: cat[K]) to "
                                 f"x_t's type, but it is {node.type.describe()}", node.span,
                                 hint=f"declare `denoiser {key}(x_t: real[...], t: step) -> real[...]` with "
                                      "equal shapes (twice the first axis for learned variances), or add a label "
                                      "`y: cat[K]` as its third input"))


def check_flows(graph: nx.DiGraph, diagnostics: list[Diagnostic]) -> None:
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind != "flow" or node.program is None:
            continue
        layers = node.program.layers()
        if not layers and node.program.result is not None:
            diagnostics.append(error("E304", f"flow {key} has no layers", node.span,
                                     hint="add coupling layers, e.g. repeat 8 { AffineCoupling() |> ActNorm }"))
        for use in layers:
            if not use.invertible:
                diagnostics.append(error("E304", f"flow {key} must be invertible, but {use.entry} is not", use.span,
                                         label="not invertible",
                                         hint=f"flows use {INVERTIBLE_LAYERS}"))


def check_flow_layers_outside_flows(graph: nx.DiGraph, diagnostics: list[Diagnostic]) -> None:
    """Flow layers compute (y, log|det|) for a flow's change of variables; in a network or a
    density block there is nothing to take the log-determinant."""
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind not in ("net", "factor") or node.program is None:
            continue
        for use in node.program.layers():
            if "invertible" in LAYERS[use.entry].tags:
                diagnostics.append(error("E304", f"{use.entry} is a flow layer: it belongs in a `flow`, not in "
                                         f"{_label(node)}", use.span, label="flow layer",
                                         hint="declare `flow f(x) <-> z { ... }` for an invertible map, or use "
                                              "Linear and an activation here"))


def _label(node) -> str:
    return node.term.describe() if node.kind == "factor" and node.term is not None else f"network {node.name}"


def check_samplers(graph: nx.DiGraph, diagnostics: list[Diagnostic]) -> None:
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind == "sampler" and node.target in graph:
            target = graph.nodes[node.target]["data"]
            if target.kind == "net" and target.role != "energy":
                diagnostics.append(error("E311", f"{node.sampler} samples from an energy, but {node.target} "
                                         f"is a {target.role}", node.decl.sampler.span,
                                         hint=f"declare `energy {node.target}(x: ...) -> real {{ ... }}`"))
            elif target.kind == "net" and node.type is not None and 0 not in Reach(graph).live_inputs(node.target):
                diagnostics.append(error("E311", f"{node.sampler} follows the gradient of {node.target} with respect to "
                                         f"its input, but {node.target}'s value does not depend on its input along a "
                                         "path a gradient can take", node.decl.sampler.span,
                                         hint=f"remove the detach(...) (or other stop) between {node.target}'s input "
                                              "and its value"))


def check_steps(graph: nx.DiGraph, diagnostics: list[Diagnostic]) -> None:
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind != "step":
            continue
        for ident in node.decl.over:
            targets = trainables_of(graph, ident.name)
            kinds = {graph.nodes[t]["data"].kind for t in targets}
            if targets and not kinds <= set(TRAINABLE_KINDS):
                what = graph.nodes[targets[0]]["data"].kind
                diagnostics.append(error("E315", f"a step updates networks and tensors; '{ident.name}' is {what}",
                                         ident.span, label="nothing to train",
                                         hint="name the networks whose parameters this step moves"))
    if graph.graph.get("train_decl") is None:
        diagnostics.append(warning("W313", "this model has no train block; `gendsl train` needs one",
                                   graph.graph["model_span"], hint="add `train { minimize LOSS; batch 64; epochs 10 }`"))


def model_capabilities(graph: nx.DiGraph) -> set[str]:
    """What metrics can measure this model: what the generated code offers them."""
    kinds = [d["data"] for _, d in graph.nodes(data=True)]
    caps = {"losses"}
    encoded = {v for n in kinds if n.kind == "factor" and n.role == "encoder" and n.term for v in n.term.vars}
    if any(n.kind == "factor" and n.role in ("decoder", "observe") and n.term and set(n.term.given) & encoded
           for n in kinds):  # an ELBO: an encoder of what a density of the data is given (not a VQ-VAE's codes)
        caps |= {"encoder", "likelihood"}
    data = {k for k, d in graph.nodes(data=True) if d["data"].kind == "data"}
    if any(n.kind == "flow" for n in kinds) or any(n.kind == "factor" and n.role == "autoregressive" and n.term
                                                   and set(n.term.vars) <= data for n in kinds) \
            or any(n.kind == "factor" and n.role == "observe" and _summed_out(graph, n) for n in kinds):
        caps.add("likelihood")
    if any(n.kind == "diffusion" for n in kinds):
        caps |= {"diffusion", "likelihood"}
    chains = {k for k, d in graph.nodes(data=True) if d["data"].kind == "latent" and d["data"].type is not None
              and d["data"].type.kind == "cat" and d["data"].type.shape}
    if any(n.kind == "factor" and n.role == "observe" and n.term is not None and set(n.term.given) & chains
           for n in kinds):
        caps.add("chain")  # the generated model has viterbi_Z (codegen/chains.py)
    if label_energy(graph):
        caps.add("classifier")
    if any(n.kind == "sample" for n in kinds):
        caps.add("samples")
        if any(_samples_mode_data(graph, key) for key, n in graph.nodes(data=True) if n["data"].kind == "sample"):
            caps.add("mode_data")
    first_sample = next((k for k, n in graph.nodes(data=True) if n["data"].kind == "sample"), None)
    if first_sample is not None and _reconstructs(graph, first_sample):
        caps.add("reconstruction")
    if first_sample is not None and _samples_images(graph, first_sample):
        caps.add("images")
    return caps


def label_energy(graph: nx.DiGraph) -> tuple[str, str, str] | None:
    """(F, x, y) for the first energy F(x, y: cat[K]) over a data variable x and a label y of the
    same data line: its lowest-energy label classifies x (the generated model's `predict`)."""
    data = [(k, d["data"]) for k, d in graph.nodes(data=True) if d["data"].kind == "data" and d["data"].type]
    for key, d in graph.nodes(data=True):
        net = d["data"]
        if net.kind != "net" or net.role != "energy" or not isinstance(net.type, NetType) or len(net.type.inputs) != 2:
            continue
        x_type, y_type = net.type.inputs
        for x, xd in data:
            y = next((y for y, yd in data if yd.group == xd.group and yd.type == y_type and y_type.kind == "cat"), None)
            if y is not None and xd.type.kind != "cat" and isinstance(x_type, TensorType) \
                    and xd.type.shape == x_type.shape:
                return key, x, y
    return None


def _summed_out(graph: nx.DiGraph, node) -> bool:
    """An observation with an exact log p(x): given no latent (the factor itself), or given
    discrete latents only (summed out). With a continuous latent it has none."""
    if node.program is None or not any(isinstance(s, ir.Draw) for s in node.program.stmts):
        return True  # its distribution was reported as wrong: no second error about it
    given = node.term.given if node.term is not None else ()
    return all(graph.nodes[g]["data"].kind == "latent" and graph.nodes[g]["data"].type is not None
               and graph.nodes[g]["data"].type.kind == "cat" for g in given)


def _samples_mode_data(graph: nx.DiGraph, key: str) -> bool:
    """A `sample` of a data variable whose source knows its modes (ring, grid): what coverage
    compares with."""
    var = key.split(":", 1)[1]
    node = graph.nodes[var]["data"] if var in graph else None
    return node is not None and node.kind == "data" and node.source in SOURCES and bool(SOURCES[node.source].density)


def _samples_images(graph: nx.DiGraph, key: str) -> bool:
    """A `sample` of a data variable whose rows are images (what fid, kid and prd compare in the
    features of an image classifier)."""
    var = key.split(":", 1)[1]
    node = graph.nodes[var]["data"] if var in graph else None
    return node is not None and node.kind == "data" and node.type is not None \
        and image_shape(node.source, node.type.kind, node.type.shape) is not None


def _reconstructs(graph: nx.DiGraph, key: str) -> bool:
    """Is a sample computed from held-out data (other than labels) that are paired with the
    variable it imitates, as reconstructions and paired translations are? (`recon` compares the
    first sample with those rows.)"""
    node = graph.nodes[key]["data"]
    if node.expr is None:
        return False
    read = {r.name for r in ir.walk(node.expr) if isinstance(r, ir.Ref) and r.scope == "data"
            and graph.nodes[r.name]["data"].type is not None and graph.nodes[r.name]["data"].type.kind != "cat"}
    target = graph.nodes.get(node.decl.name.name, {}).get("data")
    paired = target is not None and target.kind == "data" and all(
        graph.nodes[name]["data"].group == target.group for name in read)
    return bool(read) and paired


NEEDS = {"encoder": "an encoder q(z | x) of a latent that the data's decoder is given",
         "likelihood": "a likelihood (flow, autoregressive, discrete latents, encoder or diffusion)", "diffusion": "a diffusion", "mode_data": "samples of ring(...) or grid(...) data",
         "reconstruction": "a first `sample` computed from held-out data paired with the variable it imitates, "
                           "e.g. `sample x = decode(encode(x))` (unpaired translations: use losses)",
         "samples": "a `sample` statement", "losses": "losses",
         "images": "a first `sample` of image data: a real or bin variable declared [C, H, W], or the pixels of "
                   "an image source (digits, binarized_mnist, mnist_idx, paired_mnist, image_folder)",
         "classifier": "an energy F(x, y: cat[K]) of a data variable x and a label y of the same data line",
         "chain": "data observed step by step given a latent chain `z: cat[K, T] ~ Markov(...)`"}


def check_metrics(graph: nx.DiGraph, diagnostics: list[Diagnostic]) -> None:
    caps = model_capabilities(graph)
    applicable = ", ".join(sorted(m for m in METRICS if metric_needs(m) in caps))
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind != "metric" or node.metric not in METRICS:
            continue
        needs = metric_needs(node.metric)
        if needs not in caps:
            diagnostics.append(error("E312", f"metric {node.metric} does not apply to this model: it needs "
                                     f"{NEEDS[needs]}", node.span,
                                     hint=f"metrics that apply: {applicable}"))


def check_batch_statistics(graph: nx.DiGraph, diagnostics: list[Diagnostic]) -> None:
    """Layers that normalize over the batch (BatchNorm) need a batch of samples: two or more per
    train batch, and never the K values of a label that `log p(x)` sums out (they would be
    normalized against each other, not per sample)."""
    train = graph.graph.get("train")
    enumerated = _enumerated_modules(graph)
    for key, data in graph.nodes(data=True):
        program = program_of(data["data"])
        for use in program.layers() if program is not None else ():
            if not use.batch_statistics:
                continue
            if key in enumerated:
                diagnostics.append(error("E220", f"{use.entry} normalizes over the batch, but `log p(x)` runs "
                                         f"{key} on every value of {enumerated[key]} at once", use.span,
                                         label="would mix the label's values",
                                         hint="normalize per sample instead (LayerNorm), or leave it out"))
            elif train is not None and train.batch < 2:
                diagnostics.append(error("E220", f"{use.entry} normalizes over the batch, but the train block's "
                                         f"batch is {train.batch}", use.span, label="needs 2 samples or more",
                                         hint="use `batch 2` or more, or a per-sample normalization (LayerNorm, "
                                              "GroupNorm)"))


def _enumerated_modules(graph: nx.DiGraph) -> dict[str, str]:
    """Factors whose discrete latents `log p(x)` sums out, and the networks they call (run on a
    batch of every label value), with the latents concerned."""
    found: dict[str, str] = {}
    todo = [(k, ", ".join(n.term.given)) for k, d in graph.nodes(data=True) for n in [d["data"]]
            if n.kind == "factor" and n.role == "observe" and n.term is not None and n.term.given
            and _summed_out(graph, n)]
    while todo:
        key, latents = todo.pop()
        if key in found:
            continue
        found[key] = latents
        program = graph.nodes[key]["data"].program
        todo += [(e.net, latents) for e in ir.walk_program(program) if isinstance(e, ir.CallNet)] if program else []
    return found


def check_roles(graph: nx.DiGraph) -> tuple[nx.DiGraph, list[Diagnostic]]:
    """Report broken role contracts; the graph is returned unchanged."""
    diagnostics: list[Diagnostic] = []
    for check in (check_nets, check_flows, check_flow_layers_outside_flows, check_autoregressive, check_ensembles,
                  check_samplers, check_steps, check_metrics, check_batch_statistics):
        check(graph, diagnostics)
    return graph, diagnostics
