"""Model families with latents or codes: autoencoder, VAE, observe with a latent, mixture."""

from __future__ import annotations

from gendsl.types import TensorType
from tests.strategies.builder import Builder, Objective, Value
from tests.strategies.data_plans import DataPlan, DataVar, input_decl
from tests.strategies.distributions import draw_distribution, prior, real_family
from tests.strategies.expressions import local_lines, net_text, network_body
from tests.strategies.gen_text import real, type_text
from tests.strategies.picker import Picker
from tests.strategies.train_evaluate import BATCH


# ---- model families ---------------------------------------------------------------------------

def family_autoencoder(pick: Picker, b: Builder, plan: DataPlan) -> None:
    x = plan.main()
    labels = plan.labels(x)[:1] if pick.chance(60) else []
    code = real(pick.choice([1, 2, 4]))
    enc, dec, h = b.fresh("enc"), b.fresh("dec"), b.fresh("code")
    target = x.type.as_real()
    final = "sigmoid" if x.unit and pick.chance(50) else None
    corrupt = pick.choice([x.name, f"add_noise({x.name}, std={b.number(0.3, 'noise')})", f"drop({x.name}, p=0.3)"])
    # a corrupted input is real even where the data are bin
    x_in = (x.name, x.type if corrupt == x.name else x.type.as_real())
    with b.scope(enc):
        body = network_body(pick, b, [x_in] + [(y.name, y.type) for y in labels], code)
    inputs = [input_decl(x, pick) if corrupt == x.name else f"{x.name}: {type_text(x_in[1])}"]
    b.nets.append(net_text("net", enc, inputs + [input_decl(y, pick) for y in labels], code, body))
    with b.scope(dec):
        body = network_body(pick, b, [(h, code)] + [(y.name, y.type) for y in labels], target, final)
    b.nets.append(net_text("net", dec, [f"{h}: {type_text(code)}"] + [input_decl(y, pick) for y in labels],
                           target, body))
    given = "".join(f", {y.name}" for y in labels)
    recon = f"{dec}({enc}({corrupt}{given}){given})"
    measure = pick.choice(["mse", "l1"] + (["bce"] if x.unit and final is None else []))
    b.tag(f"fn:{measure}")
    terms = [f"{measure}({recon}, {x.name})"]
    if pick.chance(30):
        reduce = pick.choice(["mean", "sum"])
        terms.append(f"{b.number(0.01, 'lam')} * {reduce}(abs({enc}({x.name}{given})))")
        b.tag(f"fn:{reduce}", "fn:abs")
    loss = b.fresh("recon")
    if len(terms) > 1 and pick.chance(50):  # a loss that names other losses
        sparsity, total = b.fresh("sparsity"), b.fresh("total")
        b.losses += [f"loss {loss} = {terms[0]}", f"loss {sparsity} = {terms[1]}",
                     f"loss {total} = {loss} + {sparsity}"]
        loss = total
        b.tag("construct:loss_of_losses")
    else:
        b.losses.append(f"loss {loss} = {' + '.join(terms)}")
    b.objectives.append(Objective(loss, over=[enc, dec] if pick.chance(40) else None))
    b.samples.append(f"sample {x.name} = {dec}({enc}({x.name}{given}){given})")
    b.caps |= {"reconstruction", "samples"}
    b.tag("family:autoencoder")


def encoder_block(pick: Picker, b: Builder, name: str, z: str, zt: TensorType, given: list[DataVar]) -> None:
    with b.scope(name):
        lines, h = local_lines(pick, b, [(v.name, v.type) for v in given])
        lines.append(f"{z} ~ {encoder_distribution(pick, b, zt, h)}")
    head = f"encoder {name}({z} | {', '.join(v.name for v in given)})"
    b.nets.append(head + " {\n" + "\n".join("  " + line for line in lines) + "\n}")


def encoder_distribution(pick: Picker, b: Builder, zt: TensorType, h: Value) -> str:
    if zt.kind != "real":
        return draw_distribution(pick, b, zt, h, unit=False)
    text = real_family(pick, b, h, zt, {"Normal": 8, "Laplace": 1, "Uniform": 1}, margin="0.01")
    b.tag(f"posterior:{text.split('(')[0]}")
    return text


def latent_type(pick: Picker) -> TensorType:
    kind = pick.weighted({"real": 10, "bin": 1, "cat": 1})
    if kind == "cat":
        return TensorType(kind="cat", classes=pick.choice([2, 3]))
    return TensorType(kind=kind, shape=pick.choice([(1,), (2,), (4,), (2, 2)]))


def family_vae(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """A VAE: one or two latents, each with its prior and encoder, a decoder of the data given
    them (and perhaps the label), the ELBO with a weighted KL."""
    x = plan.main()
    labels = plan.labels(x)[:1] if pick.chance(50) else []
    latents = []
    for encoder in ["q", "r"][:2 if pick.chance(15) else 1]:
        z = b.fresh("z")
        zt = latent_type(pick)
        with b.scope("p"):
            b.decls.append(f"latent {z}: {type_text(zt)} ~ {prior(pick, b, zt, uniform=pick.choice([0, 0, 0, 1]))}")
        encoder_block(pick, b, encoder, z, zt, [x, *labels])
        latents.append((z, zt, encoder))
    with b.scope("p"):
        lines, h = local_lines(pick, b, [(z, zt) for z, zt, _ in latents] + [(y.name, y.type) for y in labels])
        lines.append(f"{x.name} ~ {draw_distribution(pick, b, x.type, h, x.unit)}")
    cond = ", ".join([z for z, _, _ in latents] + [y.name for y in labels])
    b.nets.append(f"decoder p({x.name} | {cond}) {{\n" + "\n".join("  " + line for line in lines) + "\n}")
    qgiven = ", ".join(shuffled(pick, b, [x.name] + [y.name for y in labels]))
    beta = b.number(pick.choice([1.0, 0.5, 4.0]), "beta")
    kls = " + ".join(f"kl({q}({z} | {qgiven}), p({z}))" for z, _, q in latents)
    kls = kls if len(latents) == 1 else f"({kls})"
    likelihood = f"-log p({x.name} | {', '.join(shuffled(pick, b, cond.split(', ')))})"
    if pick.chance(20):  # per-batch numbers instead of per-sample ones: the same objective
        likelihood, kls = f"mean({likelihood})", f"sum({kls}) / {batch_placeholder(b)}"
        b.tag("construct:reduced_terms", "fn:mean", "fn:sum")
    loss = b.fresh("elbo")
    b.losses.append(f"loss {loss} = {likelihood} + {beta} * {kls}")
    b.objectives.append(Objective(loss, over=["p"] + [q for _, _, q in latents] if pick.chance(30) else None))
    b.samples.append(f"sample {x.name} ~ p({x.name} | {cond})")
    if pick.chance(20):
        b.samples.append(f"sample {latents[0][0]} ~ p({latents[0][0]})")
        b.tag("construct:sample_latent")
    b.caps |= {"encoder", "likelihood", "samples"}
    b.tag("family:vae", "fn:kl", "construct:encoder", "construct:decoder",
          *(f"latent:{zt.kind}" for _, zt, _ in latents), *(["construct:two_latents"] if len(latents) > 1 else []))


def shuffled(pick: Picker, b: Builder, names: list[str]) -> list[str]:
    """Given variables of a density term in another order (the term means the same)."""
    if len(names) > 1 and pick.chance(30):
        b.tag("construct:given_order")
        return names[1:] + names[:1]
    return names


def batch_placeholder(b: Builder) -> str:
    """The batch size as the train block will set it (filled in by render_train)."""
    return BATCH


def family_observe_latent(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """`observe x ~ D(dec(z), ...)` with an encoder for z: a VAE written with observe."""
    x = plan.main()
    z, dec = b.fresh("z"), b.fresh("dec")
    zt = real(pick.choice([1, 2, 4]))
    b.decls.append(f"latent {z}: {type_text(zt)} ~ {prior(pick, b, zt, uniform=pick.choice([0, 0, 0, 1]))}")
    out = x.type.as_real()
    with b.scope(dec):
        body = network_body(pick, b, [(z, zt)], out)
    b.nets.append(net_text("net", dec, [input_decl((z, zt), pick)], out, body))
    encoder_block(pick, b, "q", z, zt, [x])
    if x.type.kind == "bin":
        b.decls.append(f"observe {x.name} ~ Bernoulli(logits = {dec}({z}))")
        b.tag("dist:Bernoulli")
    else:
        family = pick.choice(["Normal", "Laplace"])
        b.decls.append(f"observe {x.name} ~ {family}({dec}({z}), {b.number(0.5, 'sd')})")
        b.tag(f"dist:{family}")
    loss = b.fresh("elbo")
    b.losses.append(f"loss {loss} = -log p({x.name} | {z}) + kl(q({z} | {x.name}), p({z}))")
    b.objectives.append(Objective(loss))
    b.samples.append(pick.choice([f"sample {x.name} ~ p({x.name} | {z})", f"sample {x.name} = {dec}({z})"]))
    b.caps |= {"encoder", "likelihood", "samples"}
    b.tag("family:observe_latent", "construct:observe", "fn:kl")


def family_mixture(pick: Picker, b: Builder, plan: DataPlan) -> None:
    """A density written with tensors and `observe`: a mixture whose label is summed out (exact
    -log p(x)), one component without a latent, or a network of the label as the mean."""
    x = plan.main()
    k = pick.choice([1, 2, 3])
    shape = x.type.shape
    variant = pick.weighted({"mixture": 6, "no_latent": 2, "net_mean": 2})
    scale = b.number(0.5, "sd")
    if variant == "no_latent":
        loc = b.tensor(shape, "mu")
        scale = f"exp({b.tensor(shape, 'ls')})"
    else:
        c = b.fresh("c")
        label = TensorType(kind="cat", classes=k)
        if pick.chance(30):
            kname = b.fresh("K")
            b.params.append(f"param {kname}: int = {k}")
            b.tag("construct:param_in_type")
        else:
            kname = str(k)
        b.decls.append(f"latent {c}: cat[{kname}] ~ Categorical(logits = {b.tensor((k,), 'logits')})")
        b.tag("dist:Categorical", "construct:discrete_latent")
        if variant == "net_mean":
            net = b.fresh("mean_of")
            with b.scope(net):
                body = network_body(pick, b, [(c, label)], x.type.as_real(), depth=1)
            b.nets.append(net_text("net", net, [f"{c}: cat[{kname}]"], x.type.as_real(), body))
            loc = f"{net}({c})"
            b.tag("construct:net_call_label")
        else:
            loc = f"{b.tensor((k, *shape), 'mu')}[{c}]"
            scale = f"exp({b.tensor((k, *shape), 'ls')}[{c}])"
            b.tag("construct:index_label")
    family = "Bernoulli" if x.type.kind == "bin" else pick.choice(["Normal", "Normal", "Laplace"])
    args = f"logits = {loc}" if family == "Bernoulli" else f"{loc}, {scale}"
    b.decls.append(f"observe {x.name} ~ {family}({args})")
    loss = b.fresh("nll")
    b.losses.append(f"loss {loss} = -log p({x.name})")
    b.objectives.append(Objective(loss))
    b.samples.append(f"sample {x.name} ~ p({x.name})")
    b.caps |= {"likelihood", "samples"} | ({"mode_data"} if plan.modes else set())
    b.tag("family:mixture", f"mixture:{variant}", f"dist:{family}", "construct:observe")
