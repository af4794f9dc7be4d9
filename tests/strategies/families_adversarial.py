"""Adversarial model families: GAN (or WGAN critic) and translation, with their discriminators."""

from __future__ import annotations

from gendsl.types import TensorType
from tests.strategies.builder import Builder, Objective, Value
from tests.strategies.data_plans import DataPlan, input_decl
from tests.strategies.distributions import prior
from tests.strategies.expressions import merge, net_text, network_body, reduces_axes
from tests.strategies.gen_text import real, type_text
from tests.strategies.picker import Picker
from tests.strategies.pipelines import fixed


def gan_losses(pick: Picker, b: Builder, d: str, real_args: str, fake_args: str, critic: bool) -> tuple[str, str]:
    """(discriminator loss, generator loss) of a drawn GAN objective."""
    real_, fake = f"{d}({real_args})", f"{d}({fake_args})"
    if critic:
        penalty = pick.choice(["gp", "none"])
        d_loss = f"mean({fake}) - mean({real_})"
        if penalty == "gp" and "," not in real_args:
            d_loss += f" + {b.number(10.0, 'gp')} * gradient_penalty({d}, {real_args}, {fake_args})"
            b.tag("fn:gradient_penalty")
        b.tag("gan:wasserstein")
        return d_loss, f"-mean({fake})"
    kind = pick.choice(["ns", "minimax", "lsgan", "hinge", "r1"])
    b.tag(f"gan:{kind}")
    if kind == "lsgan":
        return f"mse({real_}, 1) + mse({fake}, 0)", f"mse({fake}, 1)"
    if kind == "hinge":
        return f"mean(relu(1 - {real_})) + mean(relu(1 + {fake}))", f"-mean({fake})"
    d_loss = f"bce({real_}, 1) + bce({fake}, 0)"
    if kind == "r1" and "," not in real_args:
        d_loss += f" + {b.number(1.0, 'gamma')} * r1_penalty({d}, {real_args})"
        b.tag("fn:r1_penalty")
    return d_loss, (f"-bce({fake}, 0)" if kind == "minimax" else f"bce({fake}, 1)")


def discriminator(pick: Picker, b: Builder, inputs: list[tuple[str, TensorType]], critic: bool) -> str:
    """A discriminator (or critic) of the inputs: one logit per sample, or a PatchGAN map."""
    name = b.fresh("C" if critic else "D")
    x = inputs[0][1]
    with b.scope(name):
        if not critic and len(inputs) == 1 and x.rank == 3 and min(x.shape[1:]) >= 4 and pick.chance(30):
            h = b.fresh("h")
            first = fixed("Conv2d", "Conv2d(2)", x, b, out=2)
            last = fixed("Conv2d", "Conv2d(1, kernel=4, stride=2, padding=1)", first.out, b, out=1, kernel=4,
                         stride=2, padding=1)
            body = [f"{h} = {inputs[0][0]} |> Conv2d(2) |> leaky_relu(0.2)", f"{h} |> {last.text}"]
            out: TensorType | str = last.out
            b.tag("gan:patch")
        elif b.known and pick.chance(5):  # no parameters: a step over it updates nothing
            out = "real"
            body = [f"mean(tanh({merge(pick, b, [Value(n, t) for n, t in inputs]).text}), dim=-1)"
                    if reduces_axes() else f"{inputs[0][0]} |> flatten |> relu"]
            b.tag("known:parameter_free_step")
        else:
            out = pick.choice(["logit", "real", "real[1]"])
            body = network_body(pick, b, inputs, real())
    role = "critic" if critic else "discriminator"
    b.nets.append(net_text(role, name, [input_decl(i, pick) for i in inputs], out, body))
    b.tag(f"role:{role}")
    return name


def family_gan(pick: Picker, b: Builder, plan: DataPlan) -> None:
    x = plan.main()
    labels = plan.labels(x)[:1] if pick.chance(40) else []
    z, g = b.fresh("z"), b.fresh("G")
    zt = real(pick.choice([1, 2, 4]))
    with b.scope(g):  # a learned prior is trained with the generator
        b.decls.append(f"latent {z}: {type_text(zt)} ~ {prior(pick, b, zt)}")
    final = pick.choice([None, "tanh"] + (["sigmoid"] if x.unit else []))
    g_inputs = [(z, zt)] + [(y.name, y.type) for y in labels]
    with b.scope(g):
        body = network_body(pick, b, g_inputs, x.type.as_real(), final)
    b.nets.append(net_text("generator", g, [input_decl(i, pick) for i in g_inputs], x.type.as_real(), body))
    b.tag("role:generator")
    critic = pick.chance(30)
    d = discriminator(pick, b, [(x.name, x.type.as_real())] + [(y.name, y.type) for y in labels], critic)
    given = "".join(f", {y.name}" for y in labels)
    fake = f"{g}({z}{given}){given}"
    d_loss, g_loss = gan_losses(pick, b, d, f"{x.name}{given}", fake, critic)
    dl, gl = b.fresh("d_loss"), b.fresh("g_loss")
    b.losses += [f"loss {dl} = {d_loss}", f"loss {gl} = {g_loss}"]
    b.objectives += [Objective(dl, [d], "critic"), Objective(gl, [g], "gen")]
    b.samples.append(f"sample {x.name} = {g}({z}{given})")
    b.caps |= {"samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:gan", "construct:steps")


def family_translation(pick: Picker, b: Builder, plan: DataPlan) -> None:
    a = plan.main()
    target = plan.second(a)
    paired = target.line == a.line
    g = b.fresh("G")
    with b.scope(g):
        body = network_body(pick, b, [(a.name, a.type)], target.type.as_real())
    b.nets.append(net_text("generator", g, [input_decl(a, pick)], target.type.as_real(), body))
    if pick.chance(40):
        loss = b.fresh("fit")
        b.losses.append(f"loss {loss} = {pick.choice(['mse', 'l1'])}({g}({a.name}), {target.name})")
        b.objectives.append(Objective(loss))
        b.tag("translation:regression")
    else:
        d = discriminator(pick, b, [(target.name, target.type.as_real())], critic=False)
        d_loss, g_loss = gan_losses(pick, b, d, target.name, f"{g}({a.name})", critic=False)
        if paired:
            g_loss += f" + {b.number(10.0, 'l1w')} * l1({g}({a.name}), {target.name})"
        dl, gl = b.fresh("d_loss"), b.fresh("g_loss")
        b.losses += [f"loss {dl} = {d_loss}", f"loss {gl} = {g_loss}"]
        b.objectives += [Objective(dl, [d], "critic"), Objective(gl, [g], "gen")]
        b.tag("translation:adversarial", "construct:steps")
    b.samples.append(f"sample {target.name} = {g}({a.name})")
    b.caps |= {"samples", "reconstruction"}
    b.tag("family:translation", "data:paired" if paired else "data:unpaired")
