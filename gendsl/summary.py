"""What `gendsl check` prints for a good spec: each network's signature and size, and the steps."""

from __future__ import annotations

import networkx as nx

from gendsl.types import DistType, NetType


def _io(node) -> tuple[str, str]:
    if node.kind == "net" and isinstance(node.type, NetType):
        return ", ".join(t.describe() for t in node.type.inputs), node.type.output.describe()
    program = getattr(node, "program", None)
    if program is None:
        return "", ""
    inputs = ", ".join(t.describe() for _, t in program.inputs)
    draws = [s for s in program.stmts if hasattr(s, "dist")]
    if draws and isinstance(draws[-1].dist.type, DistType):
        return inputs, draws[-1].dist.type.describe()
    if program.result is not None:
        return inputs, program.result.type.describe()
    return inputs, ""


def label(graph: nx.DiGraph, key: str) -> str:
    """How a node is named for people: q(z | x) for factors, the declared name otherwise."""
    node = graph.nodes[key]["data"]
    if node.kind == "factor" and node.term is not None:
        return node.term.describe()
    return key.split(":", 1)[-1]


def summarize(graph: nx.DiGraph) -> dict:
    """A JSON-ready description of a checked model."""
    nodes = [(k, d["data"]) for k, d in graph.nodes(data=True)]
    networks = []
    for key, node in nodes:
        if node.kind in ("net", "factor", "flow"):
            inputs, output = _io(node)
            networks.append({"name": label(graph, key), "role": getattr(node, "role", "flow"),
                             "inputs": inputs, "output": output, "params": node.params,
                             "pack": getattr(node, "pack", 1)})
    steps = []
    train = graph.graph.get("train")
    for key, node in nodes:
        if node.kind == "step":
            optimizer = node.optimizer or (train.optimizer if train else None)
            steps.append({"name": key.split(":", 1)[1], "loss": node.loss,
                          "over": [label(graph, t) for t in node.over], "repeat": node.repeat,
                          "optimizer": _call(optimizer)})
    return {
        "model": graph.graph["model"],
        "data": [{"name": k, "type": n.type.describe() if n.type else "?", "source": n.source}
                 for k, n in nodes if n.kind == "data"],
        "latents": [{"name": k, "type": n.type.describe() if n.type else "?",
                     "prior": n.prior.family if n.prior is not None else (
                         graph.nodes[n.prior_factor]["data"].term.describe() if n.prior_factor else "?")}
                    for k, n in nodes if n.kind == "latent"],
        "networks": networks,
        "losses": [k for k, n in nodes if n.kind == "loss"],
        "steps": steps,
        "train": {"batch": train.batch, "epochs": train.epochs, "steps": train.steps} if train else None,
        "parameters": graph.graph.get("size", {}).get("total", 0),
        "memory_bytes": graph.graph.get("size", {}).get("memory", 0),
    }


def _call(chosen) -> str:
    """`Adam(lr=0.0002, betas=(0.5, 0.999))`: only the options that differ from the defaults."""
    from gendsl.library.training import OPTIMIZERS

    return chosen.describe(OPTIMIZERS) if chosen is not None else ""


def format_summary(summary: dict, path: str) -> str:
    """The text form of `summarize`."""
    lines = [f"ok: model {summary['model']} ({path})"]
    for d in summary["data"]:
        lines.append(f"  data      {d['name']}: {d['type']} from {d['source']}")
    for z in summary["latents"]:
        lines.append(f"  latent    {z['name']}: {z['type']} ~ {z['prior']}")
    if summary["networks"]:
        width = max(len(n["name"]) for n in summary["networks"])
        role_width = max(len(n["role"]) for n in summary["networks"])
        for n in summary["networks"]:
            io = f"({n['inputs']}) -> {n['output']}" + (f" pack {n['pack']}" if n["pack"] > 1 else "")
            lines.append(f"  network   {n['name']:<{width}}  {n['role']:<{role_width}}  {io}  "
                         f"[{n['params']:,} params]")
    if summary["losses"]:
        lines.append(f"  losses    {', '.join(summary['losses'])}")
    for s in summary["steps"]:
        repeat = f" repeat {s['repeat']}" if s["repeat"] != 1 else ""
        lines.append(f"  step      {s['name']}: minimize {s['loss']} over {', '.join(s['over']) or '(nothing)'}"
                     f"{' with ' + s['optimizer'] if s['optimizer'] else ''}{repeat}")
    train = summary["train"]
    if train:
        length = f"{train['epochs']} epochs" if train["epochs"] else f"{train['steps']} steps"
        lines.append(f"  train     batch {train['batch']}, {length}")
    lines.append(f"  total     {summary['parameters']:,} parameters, about "
                 f"{summary['memory_bytes'] / 2**20:,.1f} MiB to train")
    return "\n".join(lines)
