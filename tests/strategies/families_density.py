"""Density model families: flow, MADE, PixelCNN, diffusion, energy (EBM with a Langevin sampler)."""

from __future__ import annotations

import re

from gendsl.library.training import BETA_SCHEDULES, PROCESSES, SAMPLERS
from gendsl.types import TensorType
from tests.strategies.builder import Builder, Objective, Value
from tests.strategies.data_plans import DataPlan, input_decl
from tests.strategies.entry_options import entry_call
from tests.strategies.expressions import net_text, network_body
from tests.strategies.gen_text import real, type_text
from tests.strategies.picker import Picker
from tests.strategies.pipelines import INVERTIBLE_LAYERS, Stage, activation, fixed, layer_stage, pipe


def invertible_stages(pick: Picker, b: Builder, x: TensorType, depth: int = 0) -> list[str]:
    stages = []
    for _ in range(pick.integer(1, 3)):
        roll = pick.weighted({"layer": 6, "repeat": 2 if depth == 0 else 0, "block": 1 if depth == 0 else 0})
        if roll == "repeat":
            inner = invertible_stages(pick, b, x, depth + 1)
            stages.append(f"repeat {pick.choice([0, 1, 2])} {{ {' |> '.join(inner)} }}")
            b.tag("construct:repeat_flow")
        elif roll == "block":
            name = b.fresh("Coupling")
            b.blocks.append(f"block {name}(width: int = 4) {{ AffineCoupling(hidden=[width]) |> ActNorm }}")
            stages.append(pick.choice([name, f"{name}(3)", f"{name}(width=2)"]))
            b.tag("construct:block_flow", "layer:AffineCoupling", "layer:ActNorm")
        else:
            name = pick.choice(INVERTIBLE_LAYERS)
            stage = layer_stage(pick, b, name, x, optional=50)
            if stage is not None:
                stages.append(stage.text)
    return stages or ["ActNorm"]


def family_flow(pick: Picker, b: Builder, plan: DataPlan) -> None:
    x = plan.main()
    z, f = b.fresh("z"), b.fresh("f")
    zt = x.type.as_real()
    kind = pick.weighted({"Normal": 6, "Laplace": 2, "learned": 1})
    with b.scope(f):
        p = f"Normal({b.tensor(zt.shape, 'mu')}, exp({b.tensor(zt.shape, 'ls')}))" if kind == "learned" \
            else f"{kind}(0, 1)"
    b.tag(f"prior:{kind}")
    b.decls.append(f"latent {z}: {type_text(zt)} ~ {p}")
    with b.scope(f):
        stages = invertible_stages(pick, b, zt)
    sep = pick.choice([" |> ", "\n  ", "; "])
    b.nets.append(f"flow {f}({input_decl(x, pick)}) <-> {z} {{\n  {sep.join(stages)}\n}}")
    loss = b.fresh("nll")
    b.losses.append(f"loss {loss} = -log p({x.name})")
    b.objectives.append(Objective(loss, over=[f] if pick.chance(40) else None))
    b.samples.append(pick.choice([f"sample {x.name} = {f}.inverse({z})", f"sample {x.name} ~ p({x.name})"]))
    b.caps |= {"likelihood", "samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:flow", "construct:flow")


def masked_trunk(pick: Picker, b: Builder, x: TensorType) -> list[Stage]:
    width = pick.choice([4, 8, 12])
    stages = [fixed("MaskedLinear", f"MaskedLinear({b.width(width)})", x, b, out=width)]
    for _ in range(pick.integer(0, 2)):
        roll = pick.choice(["act", "act", "masked", "dropout"])
        last = stages[-1].out
        if roll == "masked":
            width = pick.choice([4, 8])
            stages.append(fixed("MaskedLinear", f"MaskedLinear({width})", last, b, out=width))
        elif roll == "dropout":
            stages.append(fixed("Dropout", "Dropout(0.1)", last, b, p=0.1))
        else:
            stages.append(activation(pick, b, last))
    return stages


def family_made(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """MADE: masked linear layers; Bernoulli logits, or Normal with one or two masked heads."""
    x = plan.main()
    d = x.type.numel
    xv = Value(x.name, x.type)
    trunk = masked_trunk(pick, b, x.type)
    lines = []
    if pick.chance(60):
        h = b.fresh("h")
        lines.append(f"{h} = {pipe(xv, trunk).text}")
        source = Value(h, trunk[-1].out)
    else:
        source = pipe(xv, trunk)

    def head() -> str:
        return pipe(source, [fixed("MaskedLinear", f"MaskedLinear({d})", source.type, b, out=d)]).text

    if x.type.kind == "bin":
        lines.append(f"{x.name} ~ Bernoulli(logits = {head()})")
        b.tag("dist:Bernoulli")
        if b.known and pick.chance(30):  # a direct connection, as a second masked path
            direct = pipe(xv, [fixed("MaskedLinear", f"MaskedLinear({d})", x.type, b, out=d)]).text
            lines[-1] = f"{x.name} ~ Bernoulli(logits = ({direct}) + ({head()}))"
            b.tag("known:made_parallel")
    elif pick.chance(50):
        lines.append(f"{x.name} ~ Normal(loc = {head()}, scale = {b.number(0.5, 'sd')})")
        b.tag("dist:Normal")
    else:
        lines.append(f"{x.name} ~ Normal(loc = {head()}, scale = {head()} |> softplus)")
        b.tag("dist:Normal", "made:two_heads")
    b.nets.append(f"autoregressive p({x.name}) {{\n" + "\n".join("  " + line for line in lines) + "\n}")
    loss = b.fresh("nll")
    b.losses.append(f"loss {loss} = -log p({x.name})")
    b.objectives.append(Objective(loss))
    b.samples.append(f"sample {x.name} ~ p({x.name})")
    b.caps |= {"likelihood", "samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:made", "construct:autoregressive")


def family_pixelcnn(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """PixelCNN: a mask-A convolution, mask-B ones (perhaps in a repeat), 1x1 convolutions."""
    x = plan.main()
    channels, ch, kernel = x.type.shape[0], pick.choice([2, 4]), pick.choice([3, 5])
    first = fixed("MaskedConv2d", f"MaskedConv2d({ch}, kernel={kernel}, mask=A)", x.type, b, out=ch,
                  kernel=kernel, mask="A")
    stages = [first.text, pick.choice(["relu", "tanh", "silu"])]
    inner = f"MaskedConv2d({ch}, kernel=3, mask=B) |> relu"
    n = pick.choice([0, 1, 2])
    if pick.chance(50):
        stages.append(f"repeat {n} {{ {inner} }}")
        b.tag("construct:repeat")
    else:
        stages += [inner] * n
    stages += [f"Conv2d({ch}, kernel=1)", "relu"] if pick.chance(50) else []
    stages.append(f"Conv2d({channels}, kernel=1)")
    logits = f"{x.name} |> " + " |> ".join(stages)
    b.tag("layer:MaskedConv2d", "layer:Conv2d")
    if x.type.kind == "bin":
        draw = f"{x.name} ~ Bernoulli(logits = {logits})"
        b.tag("dist:Bernoulli")
    else:
        draw = f"{x.name} ~ Normal(loc = {logits}, scale = {b.number(0.3, 'sd')})"
        b.tag("dist:Normal")
    b.nets.append(f"autoregressive p({x.name}) {{\n  {draw}\n}}")
    loss = b.fresh("nll")
    b.losses.append(f"loss {loss} = -log p({x.name})")
    b.objectives.append(Objective(loss))
    b.samples.append(f"sample {x.name} ~ p({x.name})")
    b.caps |= {"likelihood", "samples"}
    b.tag("family:pixelcnn", "construct:autoregressive")


def family_diffusion(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """A Gaussian diffusion with a drawn noise schedule and a denoiser of (x_t, t)."""
    x = plan.main()
    q, eps, t = b.fresh("q"), b.fresh("eps"), b.fresh("t")
    betas = entry_call(pick, BETA_SCHEDULES, pick.choice(sorted(BETA_SCHEDULES)), optional=50)
    process = entry_call(pick, PROCESSES, "Gaussian", optional=60,
                         given={"betas": betas.text} if pick.chance(70) else None)
    text = process.text
    if not x.unit and process.values.get("levels"):
        text = re.sub(r"levels=\d+", "levels=0", text)  # quantized levels describe data in [0, 1]
    b.decls.append(f"diffusion {q}({x.name}) = {text}")
    b.tag(f"betas:{betas.text.split('(')[0]}", "construct:diffusion")
    xt = x.type.as_real()
    with b.scope(eps):
        if xt.rank == 3 and pick.chance(50):
            h, e = b.fresh("h"), b.fresh("e")
            body = [f"{h} = x_t |> Conv2d(2) |> relu",
                    f"{e} = sinusoidal({t}, 4) |> Linear(2) |> reshape(2, 1, 1)",
                    f"({h} + {e}) |> Conv2d({xt.shape[0]})"]
            b.tag("construct:broadcast_per_sample", "layer:Conv2d", "layer:Linear", "fn:sinusoidal")
        else:
            body = network_body(pick, b, [("x_t", xt), (t, TensorType(kind="step"))], xt)
    b.nets.append(net_text("denoiser", eps, [f"x_t: {type_text(xt)}", f"{t}: step"], xt, body))
    loss = b.fresh("simple")
    b.losses.append(f"loss {loss} = {q}.loss({eps})")
    b.objectives.append(Objective(loss, over=[eps] if pick.chance(40) else None))
    options = ""
    if b.known and pick.chance(10):
        options = pick.choice([", steps=3", ", eta=0"])
        b.tag("known:method_options")
    b.samples.append(f"sample {x.name} = {q}.reverse({eps}{options})")
    b.caps |= {"diffusion", "likelihood", "samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:diffusion", "role:denoiser")


def family_ebm(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """An energy network trained by contrastive divergence against a Langevin sampler."""
    x = plan.main()
    e, neg = b.fresh("E"), b.fresh("neg")
    labels = plan.labels(x)[:1] if b.known and pick.chance(30) else []  # an energy of two inputs
    inputs = [(x.name, x.type)] + [(y.name, y.type) for y in labels]
    with b.scope(e):
        body = network_body(pick, b, inputs, real())
    b.nets.append(net_text("energy", e, [input_decl(i, pick) for i in inputs],
                           pick.choice(["real", "real[1]", None]), body))
    call = entry_call(pick, SAMPLERS, "Langevin", optional=50, given={"energy": e})
    b.nets.append(f"sampler {neg} = {call.text}")
    alpha = b.number(0.1, "reg")
    given = "".join(f", {y.name}" for y in labels)
    if labels:
        b.tag("known:langevin_two_inputs")
    loss = b.fresh("cd")
    b.losses.append(f"loss {loss} = mean({e}({x.name}{given})) - mean({e}({neg}{given})) + {alpha} * "
                    f"(mean({e}({x.name}{given}) ^ 2) + mean({e}({neg}{given}) ^ 2))")
    b.objectives.append(Objective(loss, over=[e] if pick.chance(50) else None))
    b.samples.append(f"sample {x.name} = {neg}")
    b.caps |= {"samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:ebm", "role:energy", "construct:sampler")
