"""The train and evaluate blocks of a drawn spec, and its `--set` overrides."""

from __future__ import annotations

import re

from gendsl.library.training import METRICS, OPTIMIZERS, SCHEDULES, SETTINGS, metric_needs
from tests.strategies.builder import Builder
from tests.strategies.entry_options import entry_call
from tests.strategies.gen_text import literal
from tests.strategies.picker import Picker


# ---- train, sample and evaluate ---------------------------------------------------------------

def optimizer(pick: Picker, b: Builder) -> str:
    name = pick.choice(sorted(OPTIMIZERS))
    call = entry_call(pick, OPTIMIZERS, name, optional=40)
    b.tag(f"optimizer:{name}")
    return call.text if call else "Adam"


BATCH = "@BATCH@"  # where a loss needs the batch size the train block sets


def settings_lines(pick: Picker, b: Builder) -> list[str]:
    b.batch = pick.choice([2, 4, 8, 16])
    lines = [f"batch {b.batch}"]
    lines.append(pick.choice(["steps 2", "steps 3", "epochs 1"]))
    if pick.chance(30):
        lines.append(f"optimizer {optimizer(pick, b)}")
        b.tag("setting:optimizer")
    if pick.chance(30):
        name = pick.choice(sorted(SCHEDULES))
        call = entry_call(pick, SCHEDULES, name, optional=50)
        if call:
            lines.append(f"schedule {call.text}")
            b.tag(f"schedule:{name}", "setting:schedule")
    for name, values in (("clip", [0.0, 0.5, 1.0]), ("ema", [0.0, 0.5, 0.999, 1.0]), ("seed", [0, 7]),
                         ("log_every", [1, 100]), ("checkpoint_every", [1, 1000]), ("sample_every", [0, 1]),
                         ("eval_batch", [1, 7, 64])):
        assert name in SETTINGS
        if pick.chance(15):
            lines.append(f"{name} {literal(pick.choice(values))}")
            b.tag(f"setting:{name}")
    return lines


def render_train(pick: Picker, b: Builder) -> str:
    lines = []
    single = len(b.objectives) == 1 and b.objectives[0].step is None and pick.chance(80)
    if single:
        o = b.objectives[0]
        text = f"minimize {o.loss}"
        if o.over:
            text += f" over {', '.join(b.expand(o.over))}"
        if pick.chance(30):
            text += f" with {optimizer(pick, b)}"
        lines.append(text)
        b.tag("train:minimize")
    else:
        for o in b.objectives:
            step = o.step or b.fresh("s")
            over = b.expand(o.over or trainables(b))
            text = f"step {step}: minimize {o.loss} over {', '.join(over)}"
            if pick.chance(50):
                text += ("\n    with " if pick.chance(30) else " with ") + optimizer(pick, b)
            if pick.chance(30):
                text += f" repeat {pick.choice([1, 2])}"
                b.tag("train:repeat")
            lines.append(text)
        b.tag("train:steps")
    lines += settings_lines(pick, b)
    if pick.chance(40):
        return "train { " + "; ".join(lines) + " }" if "\n" not in "".join(lines) else \
            "train {\n" + "\n".join("  " + l for l in lines) + "\n}"
    return "train {\n" + "\n".join("  " + l for l in lines) + "\n}"


def trainables(b: Builder) -> list[str]:
    """Names with parameters, read back from the declarations (networks, flows, tensors, densities)."""
    names = []
    for line in b.nets + b.decls:
        m = re.match(r"(generator|discriminator|critic|energy|denoiser|net|flow) (\w+)", line)
        if m:
            names.append(m.group(2))
        m = re.match(r"(encoder|decoder|autoregressive) (\w+)", line)
        if m and m.group(2) not in names:
            names.append(m.group(2))
        m = re.match(r"tensor (\w+)", line)
        if m:
            names.append(m.group(1))
    return names


def render_evaluate(pick: Picker, b: Builder) -> str:
    usable = [name for name in sorted(METRICS) if metric_needs(name) in b.caps]
    others = [name for name in sorted(METRICS) if name not in usable]
    chosen = pick.some(usable, 1, 4)
    if others and pick.chance(10):
        chosen.append(pick.choice(others))  # a metric the model cannot have: check must refuse it
        b.tag("evaluate:unusable")
    items = []
    for name in chosen:
        # a small sample count always: the defaults (2,000 draws) take minutes on an
        # autoregressive model of 784 pixels
        call = entry_call(pick, METRICS, name, optional=60, always=frozenset({"samples"}))
        text = call.text if call else name
        if pick.chance(20):
            text = f"{b.fresh('m')} = {text}"
        items.append(text)
        b.tag(f"metric:{name}")
    if pick.chance(50):
        return "evaluate { " + "; ".join(items) + " }"
    return "evaluate {\n" + "\n".join("  " + i for i in items) + "\n}"


def draw_overrides(pick: Picker, b: Builder) -> list[str]:
    """`--set` values for some params: widths doubled or kept, floats changed."""
    out = []
    for name, value in b.width_params.items():
        if pick.chance(30):
            out.append(f"{name}={value * pick.choice([1, 2])}")
    for name, value in b.float_params.items():
        if pick.chance(30):
            out.append(f"{name}={pick.choice([0.5, 1, 2.0]) * value:g}")
    if out:
        b.tag("construct:set")
    return out
