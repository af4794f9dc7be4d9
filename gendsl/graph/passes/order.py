"""The autoregressive order: in an `autoregressive` block, output i depends only on inputs before i."""

from __future__ import annotations

import networkx as nx

from gendsl.diagnostics import Diagnostic, error


def check_autoregressive(graph: nx.DiGraph, diagnostics: list[Diagnostic]) -> None:
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind != "factor" or node.role != "autoregressive" or node.program is None:
            continue
        layers = node.program.layers()
        masked = [u for u in layers if u.mask]
        if not masked:
            diagnostics.append(error("E306", f"autoregressive {node.decl.name.name}({', '.join(node.term.vars)}) "
                                     "has no masked layer, so output i would see input i", node.span,
                                     hint="use MaskedLinear (MADE) or MaskedConv2d (PixelCNN)"))
            continue
        for use in layers:
            leaking = (use.mixes - {"batch"}) and not use.mask
            if use.entry == "Conv2d" and use.mixes == frozenset({"features"}):
                leaking = False  # a 1x1 convolution mixes channels of one pixel only
            if leaking:
                diagnostics.append(error("E306", f"{use.entry} mixes dimensions without a mask, breaking the "
                                         "autoregressive order", use.span, label="unmasked",
                                         hint="use MaskedLinear / MaskedConv2d, 1x1 Conv2d, or elementwise layers"))
        convs = [u for u in masked if u.mask in ("A", "B")]
        if convs and convs[0].mask != "A":
            diagnostics.append(error("E307", "the first masked convolution must use mask A (it must not see the "
                                     "pixel it predicts)", convs[0].span, label="mask B here",
                                     hint="write MaskedConv2d(..., mask=A) first, mask=B after"))
        for use in convs[1:]:
            if use.mask == "A":
                diagnostics.append(error("E307", "only the first masked convolution uses mask A", use.span,
                                         label="mask A again", hint="later layers use mask=B"))
