"""Mutated cases: a reference spec made tiny, then changed by one to three mutations (`mutate`)."""

from __future__ import annotations

import re
from pathlib import Path

from gendsl.library.layers import ACTIVATIONS, LAYERS
from gendsl.library.sources import SOURCES
from gendsl.library.training import METRICS, OPTIMIZERS, SCHEDULES
from tests.strategies.case import DATA_DIR, ROOT, Array, Case, DataFile
from tests.strategies.data_plans import SYNTHETIC
from tests.strategies.entry_options import POOLS, entry_call
from tests.strategies.picker import Picker


# ---- mutations of the reference specs ---------------------------------------------------------

REFERENCES = sorted((ROOT / "specs").glob("*.gen")) + sorted((ROOT / "tests" / "specs").glob("*.gen"))
ACTIVATION_NAMES = sorted(ACTIVATIONS) + ["leaky_relu"]
PARAM = re.compile(r"^\s*param (\w+): (int|float|bool|str) = (.+?)\s*(#.*)?$", re.M)
STAGE_CALL = re.compile(r"\|>\s*([A-Z]\w*)(\([^()]*(?:\([^()]*\)[^()]*)*\))?")


def with_imports(path: Path) -> str:
    """The text of a reference spec and of the files it imports (to find inherited params)."""
    text = path.read_text(encoding="utf-8")
    for name in re.findall(r'^import "([^"]+)"', text, re.M):
        text += "\n" + (path.parent / name).read_text(encoding="utf-8")
    return text


def dims_params(text: str, data_only: bool = False) -> set[str]:
    """Params that appear in a type (in a `data` line only, with `data_only`)."""
    lines = "\n".join(re.findall(r"^\s*data .*$", text, re.M)) if data_only else text
    return {name for inside in re.findall(r"(?:real|bin|int|cat)\[([^\]]*)\]", lines)
            for name in re.findall(r"[A-Za-z_]\w*", inside)}


def shrink_params(pick: Picker, text: str) -> list[str]:
    """`--set` values that make a reference spec tiny: widths, depths and repeat counts."""
    shapes = dims_params(text)
    out = {}
    for name, kind, value, _ in PARAM.findall(text):
        if kind == "int" and name not in shapes and name not in out and value.isdigit() and int(value) > 3:
            out[name] = f"{name}={pick.choice([1, 2, 4] if int(value) <= 16 else [2, 4, 8])}"
    return list(out.values())


SHARED_SOURCES = {
    "binarized_mnist": ((784,), ["binary"]),
    "mnist_idx": ((28, 28), ["unit", "labels"]),
    "paired_mnist": ((28, 28), ["binary", "unit", "labels"]),
}


def shrink_data(pick: Picker, text: str, files: list[DataFile], tags: set[str]) -> str:
    """Big sources become tiny files of the same shapes, synthetic sources get a small n, and
    diffusions a few steps (sampling and the bound loop over every step)."""
    for source, (shape, kinds) in SHARED_SOURCES.items():
        call = re.search(rf"\b{source}\(\)", text)
        if call:
            name = f"{source}.npz"
            arrays = tuple((f"k{i}", Array(30, () if kind == "labels" else shape, kind, 10 if kind == "labels" else 0))
                           for i, kind in enumerate(kinds))
            if name not in {f.name for f in files}:
                files.append(DataFile(name, arrays))
            text = text[:call.start()] + f'npz(path="{DATA_DIR}/{name}")' + text[call.end():]
            tags.add(f"mutation:tiny_{source}")

    def small_n(match: re.Match) -> str:
        args = [a.strip() for a in match.group(2).split(",") if a.strip() and not re.match(r"n\s*=", a.strip())]
        n = pick.choice(POOLS["n"])
        return f"{match.group(1)}({', '.join([f'n={n}'] + args)})"

    text = re.sub(r"\b(ring|grid|moons|circles|swiss_roll)\(([^()]*)\)", small_n, text)
    return re.sub(r"\b(Gaussian\(steps=)(\d+)", lambda m: m.group(1) + str(pick.choice([2, 5, 10])), text)


def shrunk_parent_lines(pick: Picker, imported: str, files: list[DataFile], tags: set[str]) -> list[str]:
    """Statements of an imported parent that `shrink_data` would change, changed: appended to a
    child model they replace the parent's (same data variables, same diffusion name)."""
    out = []
    for line in re.findall(r"^\s*((?:data|diffusion) .*?)\s*(?:#.*)?$", imported, re.M):
        small = shrink_data(pick, line, files, tags)
        if small != line:
            out.append(small)
    return out


def add_to_last_model(text: str, lines: list[str]) -> str:
    if not lines:
        return text
    end = text.rstrip().rfind("}")
    return text[:end] + "".join(f"  {line}\n" for line in lines) + text[end:]


def mutate_set_param(pick: Picker, text: str, case: dict) -> str:
    params = PARAM.findall(with_imports_text(case))
    if not params:
        return text
    name, kind, value, _ = pick.choice(params)
    new = {"int": lambda: pick.choice([1, 2, 3, 8]), "float": lambda: pick.choice([0, 0.5, 2.0, -1.0, 1e-3]),
           "bool": lambda: pick.choice(["true", "false"]), "str": lambda: None}[kind]()
    if new is not None:
        case["overrides"] = [o for o in case["overrides"] if not o.startswith(f"{name}=")] + [f"{name}={new}"]
        if name in dims_params(with_imports_text(case), data_only=True) and "npz(" in with_imports_text(case):
            case["data_problem"] = True  # a declared shape a file may not have: E403 is the answer
    return text


def with_imports_text(case: dict) -> str:
    return case["text"] + "\n" + case["imported"]


def mutate_activation(pick: Picker, text: str, case: dict) -> str:
    spots = list(re.finditer(r"\|>\s*(" + "|".join(ACTIVATION_NAMES) + r")\b(\([^()]*\))?", text))
    if not spots:
        return text
    spot = pick.choice(spots)
    name = pick.choice(ACTIVATION_NAMES)
    new = f"|> {name}" + (f"({pick.choice([0.01, 0.2])})" if name == "leaky_relu" else "")
    return text[:spot.start()] + new + text[spot.end():]


SWAPS = {
    "Linear": ["Linear({0}, bias=false)", "Linear({0})"],
    "Conv2d": ["Conv2d({0}, kernel=1)", "Conv2d({0}, kernel=5)", "Conv2d({0})"],
    "AffineCoupling": ["SplineCoupling(bins=4, hidden=[4])", "AffineCoupling(mask=checker, hidden=[3])",
                       "AffineCoupling(mask=odd, hidden=[])"],
    "SplineCoupling": ["AffineCoupling(hidden=[4])", "SplineCoupling(bins=2, bound=1.0, hidden=[2])"],
    "ActNorm": ["InvertibleLinear", "Reverse", "ActNorm |> InvertibleLinear"],
    "MaskedConv2d": ["MaskedConv2d({0}, kernel=5, mask=B)", "MaskedConv2d({0}, kernel=1, mask=B)"],
    "MaskedLinear": ["MaskedLinear({0})"],
}
INSERTS = ["LayerNorm", "BatchNorm", "Dropout(0.1)", "identity", "SelfAttention(heads=1)",
           "GroupNorm(groups=1)", "MaxPool2d |> Upsample", "AvgPool2d(kernel=1)"]


def mutate_layer(pick: Picker, text: str, case: dict) -> str:
    """Swap a layer for a registry neighbour of the same shape, insert a shape-keeping layer after
    a stage, or (rarely) put any registry layer in its place."""
    spots = list(STAGE_CALL.finditer(text))
    if not spots:
        return text
    spot = pick.choice(spots)
    name, args = spot.group(1), (spot.group(2) or "()")[1:-1]
    first = args.split(",")[0].strip() if args else ""
    roll = pick.weighted({"swap": 5, "insert": 3, "any": 1})
    if roll == "swap" and name in SWAPS:
        new = "|> " + pick.choice(SWAPS[name]).format(first)
        case["tags"].add(f"mutation:swap_{name}")
    elif roll == "insert":
        new = spot.group(0) + " |> " + pick.choice(INSERTS)
        case["tags"].add("mutation:insert_layer")
    else:
        other = pick.choice(sorted(LAYERS))
        new = f"|> {other}" + (f"({first})" if first and pick.chance(50) else "")
        case["tags"].add("mutation:any_layer")
    return text[:spot.start()] + new + text[spot.end():]


def mutate_width(pick: Picker, text: str, case: dict) -> str:
    spots = list(re.finditer(r"\b(Linear|Conv2d|MaskedConv2d|MaskedLinear|ConvTranspose2d)\((\d+)", text))
    spots += list(re.finditer(r"\b(hidden)=\[(\d+)", text))
    if not spots:
        return text
    spot = pick.choice(spots)
    return text[:spot.start(2)] + str(pick.choice([1, 2, 3, 5])) + text[spot.end(2):]


def train_block(text: str) -> tuple[int, int] | None:
    """(start, end) of the last train block's braces, or None."""
    start = text.rfind("train {")
    if start < 0:
        return None
    depth = 0
    for i in range(start + 6, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return start, i
    return None


def mutate_optimizer(pick: Picker, text: str, case: dict) -> str:
    name = pick.choice(sorted(OPTIMIZERS))
    call = entry_call(pick, OPTIMIZERS, name, optional=50)
    spots = list(re.finditer(r"\b(Adam|AdamW|SGD|RMSprop)\b(\([^()]*(?:\([^()]*\)[^()]*)*\))?", text))
    case["tags"].add(f"optimizer:{name}")
    if spots and pick.chance(70):
        spot = pick.choice(spots)
        return text[:spot.start()] + call.text + text[spot.end():]
    block = train_block(text)
    if block is None:
        return text
    return text[:block[1]] + f"; optimizer {call.text} " + text[block[1]:]


def mutate_setting(pick: Picker, text: str, case: dict) -> str:
    block = train_block(text)
    if block is None:
        return text
    setting = pick.choice(["schedule", "clip", "ema", "batch", "length", "eval_batch", "log_every"])
    case["tags"].add(f"setting:{setting}")
    if setting == "schedule":
        name = pick.choice(sorted(SCHEDULES))
        call = entry_call(pick, SCHEDULES, name, optional=50)
        line = f"schedule {call.text}"
        case["tags"].add(f"schedule:{name}")
    elif setting == "length":
        line = pick.choice(["steps 2", "epochs 1"])
        inner = re.sub(r"\b(steps|epochs) \d+", "", text[block[0]:block[1]])
        text = text[:block[0]] + inner + text[block[1]:]
        block = train_block(text)
    elif setting == "batch":
        line = f"batch {pick.choice([1, 2, 3, 16])}"
        inner = re.sub(r"\bbatch \d+", line, text[block[0]:block[1]])
        return text[:block[0]] + inner + text[block[1]:]
    else:
        values = {"clip": [0.0, 1.0], "ema": [0.0, 0.9, 1.0], "eval_batch": [1, 3], "log_every": [1]}
        line = f"{setting} {pick.choice(values[setting])}"
    return text[:block[1]] + f"; {line} " + text[block[1]:]


def mutate_metrics(pick: Picker, text: str, case: dict) -> str:
    items = []
    for name in pick.some(sorted(METRICS), 1, 3):
        call = entry_call(pick, METRICS, name, optional=70, always=frozenset({"samples"}))
        items.append(call.text if call else name)
        case["tags"].add(f"metric:{name}")
    block = f"evaluate {{ {'; '.join(items)} }}"
    found = re.search(r"evaluate \{[^}]*\}", text)
    if found:
        return text[:found.start()] + block + text[found.end():]
    end = text.rstrip().rfind("}")
    return text[:end] + f"  {block}\n" + text[end:]


def mutate_distribution(pick: Picker, text: str, case: dict) -> str:
    spots = list(re.finditer(r"\b(Normal|Laplace)\(", text)) + list(re.finditer(r"\bNormal\(0, 1\)", text))
    if not spots:
        return text
    spot = pick.choice(spots)
    new = "Uniform(-1, 1)" if spot.group(0) == "Normal(0, 1)" and pick.chance(50) else \
        ("Laplace(" if spot.group(0).startswith("Normal") else "Normal(") + spot.group(0)[spot.group(0).index("(") + 1:]
    return text[:spot.start()] + new + text[spot.end():]


def mutate_statement(pick: Picker, text: str, case: dict) -> str:
    """Drop or duplicate one statement line of the model."""
    lines = text.split("\n")
    candidates = [i for i, line in enumerate(lines)
                  if re.match(r"\s+(param|latent|tensor|loss|sample|observe|data)\b", line)]
    if not candidates:
        return text
    i = pick.choice(candidates)
    if pick.chance(50):
        del lines[i]
        case["tags"].add("mutation:drop_statement")
    else:
        lines.insert(i, lines[i])
        case["tags"].add("mutation:duplicate_statement")
    return "\n".join(lines)


def mutate_source_options(pick: Picker, text: str, case: dict) -> str:
    spots = list(re.finditer(r"\b(ring|grid|moons|circles|swiss_roll)\(([^()]*)\)", text))
    if not spots:
        return text
    spot = pick.choice(spots)
    source = pick.choice(SYNTHETIC) if pick.chance(50) else spot.group(1)
    call = entry_call(pick, SOURCES, source, optional=60, given={"n": str(pick.choice(POOLS["n"]))})
    case["tags"].add(f"source:{source}")
    return text[:spot.start()] + call.text + text[spot.end():]


MUTATIONS = {"set_param": (mutate_set_param, 4), "activation": (mutate_activation, 3),
             "layer": (mutate_layer, 4), "width": (mutate_width, 2), "optimizer": (mutate_optimizer, 2),
             "setting": (mutate_setting, 3), "metrics": (mutate_metrics, 3),
             "distribution": (mutate_distribution, 2), "statement": (mutate_statement, 1),
             "source_options": (mutate_source_options, 1)}


def mutate(pick: Picker) -> Case:
    """A reference spec made tiny, then changed by one to three mutations."""
    path = pick.choice(REFERENCES)
    original = path.read_text(encoding="utf-8")
    imported = with_imports(path)[len(original):]
    files: list[DataFile] = []
    tags: set[str] = {f"reference:{path.stem}"}
    text = shrink_data(pick, original, files, tags)
    if imported and not re.search(r"^\s*data ", original, re.M) or "diffusion" in imported:
        text = add_to_last_model(text, [line for line in shrunk_parent_lines(pick, imported, files, tags)
                                        if line.split("=")[0].split(":")[0] not in text])
    case = {"text": text, "imported": imported, "overrides": shrink_params(pick, original + imported), "tags": tags,
            "data_problem": False}
    applied = []
    for _ in range(pick.integer(1, 3)):
        kind = pick.weighted({k: w for k, (_, w) in MUTATIONS.items()})
        case["text"] = MUTATIONS[kind][0](pick, case["text"], case)
        applied.append(kind)
        tags.add(f"mutation:{kind}")
    relative = path.relative_to(ROOT).as_posix()
    return Case(text=case["text"], overrides=tuple(case["overrides"]), files=tuple(files),
                origin=f"mutated {relative}: {', '.join(applied)}", tags=frozenset(tags), path=relative,
                data_problem=case["data_problem"], via_cli=pick.chance(30), resume=pick.chance(15))
