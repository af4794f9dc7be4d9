"""Generated cases (`generate`: a data plan, a model family of FAMILIES, train and evaluate blocks)
and the hypothesis strategies over generated and mutated cases (`cases`)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Callable

from hypothesis import strategies as st

from tests.strategies.builder import Builder
from tests.strategies.case import Case
from tests.strategies.data_plans import DataPlan, draw_data
from tests.strategies.families_adversarial import family_gan, family_translation
from tests.strategies.families_density import family_diffusion, family_ebm, family_flow, family_made, family_pixelcnn
from tests.strategies.families_latent import family_autoencoder, family_mixture, family_observe_latent, family_vae
from tests.strategies.mutations import mutate
from tests.strategies.picker import Picker
from tests.strategies.train_evaluate import BATCH, draw_overrides, render_evaluate, render_train


def fits(family: str, plan: DataPlan) -> bool:
    x = plan.main()
    t = x.type
    if family in ("gan", "ebm", "diffusion"):
        return t.kind == "real"
    if family == "flow":
        return t.kind == "real" and t.rank == 1 and t.numel >= 2
    if family == "made":
        return t.rank == 1
    if family == "pixelcnn":
        return t.rank == 3 and t.shape[1] >= 3
    if family == "translation":
        return plan.second(x) is not None
    return True


FAMILIES = {"autoencoder": (family_autoencoder, 3), "vae": (family_vae, 4),
            "observe_latent": (family_observe_latent, 2), "mixture": (family_mixture, 3),
            "gan": (family_gan, 4), "translation": (family_translation, 3), "flow": (family_flow, 3),
            "made": (family_made, 3), "pixelcnn": (family_pixelcnn, 2), "diffusion": (family_diffusion, 3),
            "ebm": (family_ebm, 2)}


def generate(pick: Picker) -> Case:
    """A random spec built by construction (see the docstring of specs.py)."""
    b = Builder(pick)
    lines = 2 if pick.chance(20) else 1
    plan = draw_data(pick, b, lines)
    weights = {name: w for name, (_, w) in FAMILIES.items() if fits(name, plan)}
    family = pick.weighted(weights)
    FAMILIES[family][0](pick, b, plan)
    b.train_text = render_train(pick, b)
    b.losses = [line.replace(BATCH, str(b.batch)) for line in b.losses]
    if pick.chance(80):
        b.evaluate_text = render_evaluate(pick, b)
    overrides = draw_overrides(pick, b)
    imports: tuple[tuple[str, str], ...] = ()
    if b.blocks and pick.chance(30):  # the blocks in a file of their own, imported
        imports = (("blocks.gen", "\n\n".join(b.blocks) + "\n"),)
        text = 'import "blocks.gen"\n\n' + b.text(pick.choice(["M", "Model", "Gen"]), blocks=False)
        b.tag("construct:import")
    else:
        text = b.text(pick.choice(["M", "Model", "Gen"]))
    if pick.chance(8) and b.width_params:
        name, value = next(iter(b.width_params.items()))
        parent = text.split("model ")[-1].split(" ")[0]
        text += f"\nmodel Child extends {parent} {{\n  param {name}: int = {value}\n}}\n"
        b.tag("construct:extends")
    return Case(text=text, overrides=tuple(overrides), files=tuple(b.files), origin=f"generated {family}",
                imports=imports,
                via_cli=pick.chance(30), resume=pick.chance(15),
                tags=frozenset(b.tags), data_problem=b.data_problem)


# ---- hypothesis strategies --------------------------------------------------------------------
# Hypothesis draws one seed per case, and a `random.Random` makes every choice from it: the
# choices keep the weights written in this package (hypothesis' own integers favour the ends of
# their ranges, which would make every rare construct common), and a case is reproduced from its
# seed, which its origin shows: `generate(Picker(rng=random.Random(SEED)))`.

SEEDS = st.integers(0, 2 ** 32 - 1)


def seeded(make: Callable[[Picker], Case], seed: int) -> Case:
    case = make(Picker(rng=random.Random(seed)))
    return replace(case, origin=f"{case.origin} (seed {seed})")


@st.composite
def generated_cases(draw) -> Case:
    """A spec drawn by construction (`generate`)."""
    return seeded(generate, draw(SEEDS))


@st.composite
def mutated_cases(draw) -> Case:
    """A reference spec made tiny and mutated (`mutate`)."""
    return seeded(mutate, draw(SEEDS))


@st.composite
def cases(draw, mutated_percent: int = 30) -> Case:
    """Generated specs, and mutated reference specs `mutated_percent` of the time."""
    seed = draw(SEEDS)
    return seeded(mutate if seed % 100 < mutated_percent else generate, seed)
