"""One place for the look of diagrams: fonts, colours and shapes chosen for print."""

FONT = "Helvetica"
GRAPH = {"fontname": FONT, "fontsize": "11", "nodesep": "0.35", "ranksep": "0.45", "bgcolor": "white",
         "pad": "0.2", "compound": "true", "newrank": "true"}
NODE = {"fontname": FONT, "fontsize": "11", "penwidth": "1.0"}
EDGE = {"fontname": FONT, "fontsize": "9", "color": "#555555", "fontcolor": "#333333", "arrowsize": "0.7"}

OBSERVED = {"shape": "ellipse", "style": "filled", "fillcolor": "#d9d9d9", "color": "#333333"}
LATENT = {"shape": "ellipse", "style": "solid", "color": "#333333"}
TENSOR = {"shape": "box", "style": "filled", "fillcolor": "#f2f2f2", "color": "#888888", "fontsize": "10"}
LOSS = {"shape": "box", "style": "rounded,filled", "fillcolor": "#fbe9d0", "color": "#b5651d"}
SCHEDULE = {"shape": "box", "style": "dashed,rounded", "color": "#a33a3a", "fontcolor": "#a33a3a", "fontsize": "10"}
MINIMIZE = {"style": "dashed", "color": "#a33a3a", "arrowsize": "0.6"}
CALL = {"color": "#2f5fa0", "fontcolor": "#2f5fa0", "style": "bold"}  # a network calling another one
SAMPLER = {"shape": "diamond", "style": "filled", "fillcolor": "#e8f0e0", "color": "#4a7a3a", "fontsize": "10"}
PROCESS = {"shape": "box", "style": "filled,rounded", "fillcolor": "#efe7f6", "color": "#6a4a8a"}
INFERENCE = {"style": "dashed", "color": "#2f5fa0", "constraint": "false"}  # layout follows p, not q
PARAMETER = {"shape": "plaintext", "fontsize": "14", "width": "0.3", "height": "0.3"}  # theta, phi in the pgm
CLUSTER = {"style": "rounded,filled", "fillcolor": "#eef3fa", "color": "#7f9cc4", "fontname": f"{FONT} Bold",
           "fontsize": "11", "margin": "10"}
ROLE_COLORS = {"discriminator": "#fbeeee", "critic": "#fbeeee", "energy": "#f6f0e2", "flow": "#eef7ee",
               "autoregressive": "#f3eefa", "denoiser": "#eef7f7"}
