"""Conformance: every entry of every registry checks, renders, emits and runs.

A registry entry owns its feature (signature, shape rule, display data, implementation). For
each entry, by name, this test writes small specs that use it, runs them through the real
pipeline (check -> DOT -> generated PyTorch -> a built model) and holds what runs to what the
checker promised:

- layers: for several input shapes, the output shape and the parameter count equal the
  checker's; flow layers also invert and report a log-determinant per sample;
- functions: the result has the checker's type, in a network or (reductions, penalties) a loss;
- distributions: draws of the declared type lie in the support and log_prob is one number per
  sample;
- optimizers and schedules: the learning-rate trajectory equals an independent reference;
- initializers: the values they promise; samplers, diffusion processes, noise schedules: they
  produce batches of the right shape;
- metrics: they run on a tiny trained run of a model that has what they need;
- data sources: every split loads, in the types the entry declares.

A registry module that defines a registry this file does not cover fails
`test_every_registry_is_covered`, and an entry whose implementation is missing fails its own
test, by name.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import math
import pkgutil

import numpy as np
import pytest
import torch

import gendsl.library
from gendsl.library.distributions import DISTRIBUTIONS
from gendsl.library.entries import Registry
from gendsl.library.functions import FUNCTIONS
from gendsl.library.layers import LAYERS
from gendsl.library.methods import METHODS
from gendsl.library.signature import is_operand, parameters
from gendsl.library.sources import SOURCES
from gendsl.library.training import (BETA_SCHEDULES, INITS, METRICS, OPTIMIZERS, PROCESSES, SAMPLERS,
                                     SCHEDULES, metric_needs)
from tests.conformance.arguments import configurations
from tests.conformance.pipeline import checks, compile_text, sample_input

COVERED = {"layer", "function", "distribution", "data source", "optimizer", "schedule", "sampler",
           "diffusion process", "noise schedule", "metric", "initializer", "method"}


def registries() -> list[Registry]:
    """Every Registry defined by a module of gendsl.library."""
    found = []
    for info in pkgutil.iter_modules(gendsl.library.__path__):
        module = importlib.import_module(f"gendsl.library.{info.name}")
        found += [v for v in vars(module).values() if isinstance(v, Registry) and v not in found]
    return found


def test_every_registry_is_covered():
    missing = [r.what for r in registries() if r.what not in COVERED]
    assert not missing, f"registries without a conformance test here: {missing}"


# ---- layers ----

INPUTS = ["real[6]", "real[16]", "bin[6]", "real[4, 8, 8]", "real[1, 8, 8]", "real[8, 4]", "cat[5]", "real"]


def layer_uses(name: str) -> list[tuple[str, str]]:
    """(input type, call) pairs the entry's rule accepts, at most one per input type."""
    entry = LAYERS[name]
    found = []
    for input_type in INPUTS:
        numel = math.prod(int(d) for d in input_type[input_type.find("[") + 1:-1].split(",")) \
            if "[" in input_type and not input_type.startswith("cat") else 1
        for args in configurations(entry, numel):
            call = f"{name}({', '.join(args)})"
            if checks(layer_spec(input_type, call, entry)).ok:
                found.append((input_type, call))
                break
    return found


def layer_spec(input_type: str, call: str, entry) -> str:
    if "invertible" in entry.tags:
        return (f"model C {{\n  data x: {input_type} from npy(path=\"x.npy\")\n  latent z: {input_type} ~ Normal(0, 1)\n"
                f"  flow f(x) <-> z {{ {call} }}\n}}\n")
    return f"model C {{\n  net f(h: {input_type}) {{ h |> {call} }}\n}}\n"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer(name, tmp_path):
    uses = layer_uses(name)
    assert uses, f"no configuration of {name} passes its own rule on inputs {INPUTS}"
    for input_type, call in uses:
        compiled = compile_text(layer_spec(input_type, call, LAYERS[name]), tmp_path)
        node = compiled.node("f")
        module = compiled.model.f
        use = node.program.layers()[0] if node.kind != "flow" else node.program.result.layers[0]
        x = sample_input(use.input.kind, use.input.shape, use.input.classes)
        assert sum(p.numel() for p in module.parameters()) == node.params, (call, input_type)
        assert use.describe().startswith(name), use.describe()
        module.train()
        if node.kind == "flow":
            y, logdet = module(x)
            assert y.shape == x.shape and logdet.shape == (3,), (call, y.shape, logdet.shape)
            module.eval()
            y, _ = module(x)
            assert torch.allclose(module.inverse(y), x, atol=1e-4), call
        else:
            out = module(x)
            assert tuple(out.shape) == (3, *node.type.output.shape), (call, input_type, out.shape)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_options_out_of_range_are_diagnostics(name, tmp_path):
    """Every number option at 0 and -1: refused by the checker with a diagnostic, or it runs."""
    uses = layer_uses(name)
    numbers = [p for p in parameters(LAYERS[name].rule, 1)
               if not is_operand(p.annotation) and ("int" in str(p.annotation) or "float" in str(p.annotation))]
    input_type, call = uses[0]
    base = call[:-1] + (", " if call[-2] != "(" else "")
    for p in numbers:
        for value in ("0", "-1"):
            option = f"{base}{p.name}={value})"
            if p.name in call:  # a required option given positionally: replace it
                option = call.replace(call[call.index("(") + 1:call.index(")")], f"{p.name}={value}")
            spec = layer_spec(input_type, option, LAYERS[name])
            checked = checks(spec)  # a crash here is a bug: the checker only answers with diagnostics
            if checked.ok:
                run_compiled_layer(spec, tmp_path)


def run_compiled_layer(spec: str, tmp_path) -> None:
    """A checked single-layer spec builds and runs forward on a batch."""
    compiled = compile_text(spec, tmp_path)
    node = compiled.node("f")
    use = node.program.layers()[0] if node.kind != "flow" else node.program.result.layers[0]
    compiled.model.f(sample_input(use.input.kind, use.input.shape, use.input.classes))


# ---- functions ----

OPERAND_TYPES = ["real[4]", "real[3, 4]", "real", "cat[4]", "step"]


def function_calls(name: str) -> list[str]:
    """Specs using a function: in a network, or as a loss over data (penalties, and reductions
    over the batch, which only losses may take); operands drawn from OPERAND_TYPES."""
    entry = FUNCTIONS[name]
    operands = [p for p in parameters(entry.rule, entry.skip) if is_operand(p.annotation)]
    found = []
    for args in configurations(entry):
        for types in _operand_types(operands):
            contexts = ("loss",) if any("NetType" in str(p.annotation) for p in operands) else ("net", "loss")
            for context, labelled in itertools.product(contexts, (False, True)):
                # (a network calling another network takes it as an extra input)
                spec = function_spec(name, operands, types, args, context, labelled)
                if checks(spec).ok:
                    found.append(spec)
                    break
            if found and len(found) % 2:
                break
        if len(found) >= 2:
            break
    return found


def _operand_types(operands) -> list[tuple[str, ...]]:
    tensors = [p for p in operands if "NetType" not in str(p.annotation)]
    if any(p.kind.name == "VAR_POSITIONAL" for p in operands):
        return [("real[4]", "real[4]"), ("real[3, 4]", "real[3, 4]")]
    return [tuple(t for _ in tensors) for t in OPERAND_TYPES] + [("real[4]",) + ("real",) * (len(tensors) - 1)]


def function_spec(name: str, operands, types: tuple[str, ...], args: list[str], context: str,
                  labelled: bool = False) -> str:
    """`net f(a0: T0, ...) { NAME(a0, ..., options) }`, or the call as `loss l` over data a0, ...;
    a network operand (the penalties' critic) is a critic D over the first input's type (and, when
    `labelled`, a label: D(x, y: cat[3]), as each_label takes)."""
    inputs = ", ".join(f"a{i}: {t}" for i, t in enumerate(types))
    names = iter(f"a{i}" for i in range(len(types)))
    call_args = ["D" if "NetType" in str(p.annotation) else next(names) for p in operands
                 if p.kind.name != "VAR_POSITIONAL"] + list(names)
    call = f"{name}({', '.join(call_args + args)})"
    critic = (f"  critic D(x: {types[0]}, y: cat[3]) -> real {{ concat(x |> flatten, onehot(y)) |> Linear(1) }}\n"
              if labelled else f"  critic D(x: {types[0]}) -> real {{ x |> flatten |> Linear(1) }}\n")
    critic = critic if "D" in call_args else ""
    if context == "net":
        return f"model C {{\n{critic}  net f({inputs}) {{ {call} }}\n}}\n"
    value = f"mean({call})" if labelled else call  # a value at every label: the loss takes its mean
    return f"model C {{\n  data {inputs} from npz(path=\"d.npz\")\n{critic}  loss l = {value}\n}}\n"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function(name, tmp_path):
    specs = function_calls(name)
    assert specs, f"no call of {name} passes the checker"
    for spec in specs:
        compiled = compile_text(spec, tmp_path)
        graph = compiled.checked.graph
        if "f" in graph:
            node = compiled.node("f")
            inputs = [sample_input(t.kind, t.shape, t.classes) for _, t in node.program.inputs]
            out = compiled.model.f(*inputs)
            expected = node.type.output
            assert tuple(out.shape) == ((3,) if expected.batched else ()) + tuple(expected.shape), (spec, out.shape)
        else:
            batch = {k: sample_input(d["data"].type.kind, d["data"].type.shape, d["data"].type.classes)
                     for k, d in graph.nodes(data=True) if d["data"].kind == "data"}
            value = compiled.model.loss_l(batch)
            assert value.shape == () and torch.isfinite(value), (spec, value)


# ---- distributions ----

def distribution_specs(name: str) -> list[str]:
    """`latent z ~ NAME(...)` with parameters given as shared tensors of 3 values (or 3 x 3, for a
    chain's transitions)."""
    entry = DISTRIBUTIONS[name]
    operands = [p for p in parameters(entry.rule, entry.skip) if is_operand(p.annotation)]
    found = []
    for chosen, shapes in itertools.product(_subsets(operands), ("3", "3, 3")):
        keywords = ", ".join(f"{p.name} = t{i}" for i, p in enumerate(chosen))
        # positive values, increasing from one argument to the next (scale > 0, probs in (0, 1), low < high);
        # after the first, either vectors or square matrices
        tensors = "".join(f"  tensor t{i}: real[{shapes if i else 3}] = uniform(low={0.1 + 0.5 * i}, "
                          f"high={0.4 + 0.5 * i})\n" for i in range(len(chosen)))
        for declared in ("real[3]", "bin[3]", "cat[3]", "cat[3, 4]"):
            spec = f"model C {{\n{tensors}  latent z: {declared} ~ {name}({keywords})\n  sample z ~ p(z)\n}}\n"
            if checks(spec).ok:
                found.append(spec)
    return found


def _subsets(operands):
    """The required parameters, with each optional one in turn (logits= or probs=)."""
    required = [p for p in operands if p.default is p.empty]
    optional = [p for p in operands if p not in required]
    return [required + [p] for p in optional] if optional else [required]


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_distribution(name, tmp_path):
    specs = distribution_specs(name)
    assert specs, f"no latent can take a {name} prior"
    for spec in specs:
        compiled = compile_text(spec, tmp_path)
        latent = compiled.node("z").type
        prior = compiled.model.prior_z()
        draws = prior.sample((5,))
        assert tuple(draws.shape) == (5, *latent.shape), (spec, draws.shape)
        assert prior.log_prob(draws).shape == (5,), spec
        assert torch.isfinite(prior.log_prob(draws)).all(), spec
        if latent.kind == "bin":
            assert set(draws.unique().tolist()) <= {0.0, 1.0}
        elif latent.kind == "cat":
            assert ((draws >= 0) & (draws < latent.classes)).all()
        assert_position_constructor(compiled.node("z").prior, prior, draws, latent.shape)


def assert_position_constructor(dist, prior, draws, shape) -> None:
    """A family's `position` constructor, over the whole distribution's parameters at position i,
    scores the values at i as the whole distribution does (what autoregressive samplers draw from)."""
    if dist.position is None or not shape:
        return
    whole = prior.base_dist if isinstance(prior, torch.distributions.Independent) else prior
    for i in range(shape[0]):
        code = dist.position.format(**{name: f"whole.{name}[{i}]" for name in dist.params})
        alone = eval(code, {"D": torch.distributions, "whole": whole})  # the generated code's own text
        assert torch.allclose(alone.log_prob(draws[:, i]), whole.log_prob(draws)[:, i]), code


# ---- optimizers and schedules ----

def train_spec(optimizer: str = "Adam(lr=0.1)", schedule: str = "constant()") -> str:
    return ("model C {\n  tensor w: real[3] = ones\n  data x: real[3] from npy(path=\"x.npy\")\n"
            "  loss l = mse(x * w, 0)\n"
            f"  train {{ optimizer {optimizer}; schedule {schedule}; minimize l; batch 4; steps 10 }}\n}}\n")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer(name, tmp_path):
    configs = [a for a in configurations(OPTIMIZERS[name]) if checks(train_spec(f"{name}({', '.join(a)})")).ok]
    assert configs, f"no configuration of {name} passes its own rule"
    compiled = compile_text(train_spec(f"{name}({', '.join(configs[0])})"), tmp_path)
    (optimizer, scheduler), = compiled.model.configure_optimizers(10).values()
    assert type(optimizer).__name__ == name
    w = compiled.model.w
    assert [p for g in optimizer.param_groups for p in g["params"]] == [w]
    before = w.detach().clone()
    plain_w, plain = plain_twin(optimizer, w)
    for _ in range(5):
        optimizer.zero_grad()
        compiled.model.loss_l({"x": torch.randn(4, 3)}).backward()
        plain_w.grad = w.grad.clone()
        optimizer.step()
        plain.step()
    assert not torch.equal(before, w.detach()), f"{name} did not move the parameters"
    # docs/semantics.md: fused where torch has a fused kernel, with the plain optimizer's update
    assert bool(optimizer.defaults.get("fused")) == ("fused" in inspect.signature(type(optimizer)).parameters)
    assert torch.allclose(w, plain_w, rtol=1e-5, atol=1e-6), f"{name} differs from torch's plain {name}"


def plain_twin(optimizer, w):
    """A copy of `w` under torch's per-operation implementation of `optimizer`, with its options."""
    accepted = inspect.signature(type(optimizer)).parameters
    options = {k: v for k, v in optimizer.defaults.items() if k in accepted and k not in ("fused", "foreach")}
    twin = w.detach().clone().requires_grad_()
    return twin, type(optimizer)([twin], **options, foreach=False)


def reference_factor(name: str, options: dict, r: int, total: int) -> float:
    """The documented learning-rate factor of each schedule at round r (independent of gendsl)."""
    warmup = options.get("warmup", 0)
    if warmup and r < warmup:
        return (r + 1) / warmup
    progress = min(1.0, (r - warmup) / max(1, total - warmup))
    if name == "constant":
        return 1.0
    if name == "cosine":
        low = options.get("min_factor", 0.0)
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress))
    if name == "linear":
        return max(0.0, 1.0 - progress)
    if name == "step":
        return options.get("gamma", 0.1) ** (r // options["every"])
    if name == "onecycle":
        rise, div = options.get("rise", 0.3), options.get("div", 25.0)
        low = 1 / (div * options.get("final_div", 1e4))
        peak = max(1, round(rise * total))
        start, end, share = (1 / div, 1.0, r / peak) if r < peak else (1.0, low, (r - peak) / max(1, total - peak))
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * share))
    if name == "stages":
        count, growth, final = options.get("count", 8), options.get("growth", 3.0), options.get("final", 0.1)
        weights = [growth ** i for i in range(count)]
        stage = next(i for i in range(count) if i == count - 1 or r / total < sum(weights[:i + 1]) / sum(weights))
        return final ** (stage / (count - 1))
    if name == "plateau":  # the test reports the same valid loss each round: no round improves on the first
        reductions = max(0, r - 1) // (options.get("patience", 2) + 1)
        return max(options.get("factor", 0.1) ** reductions, min(options.get("min_lr", 0.0) / 0.1, 1.0))
    raise AssertionError(f"schedule {name} has no reference trajectory in this test: add one")


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule(name, tmp_path):
    tried = 0
    for args in configurations(SCHEDULES[name]):
        call = f"{name}({', '.join(args)})"
        if not checks(train_spec(schedule=call)).ok:
            continue
        tried += 1
        compiled = compile_text(train_spec(schedule=call), tmp_path)
        total = 12
        (optimizer, scheduler), = compiled.model.configure_optimizers(total).values()
        options = {a.split("=")[0]: float(a.split("=")[1]) if "." in a else int(a.split("=")[1]) for a in args}
        for r in range(total):
            expected = 0.1 * reference_factor(name, options, r, total)
            assert optimizer.param_groups[0]["lr"] == pytest.approx(expected), (call, r)
            optimizer.step()
            scheduler.step(*([1.0] if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) else []))
    assert tried, f"no configuration of {name} passes its own rule"


def test_stages_defaults_are_burdas_staircase(tmp_path):
    """Over 3,280 rounds (an epoch a round), stages() is Burda et al. 2016's schedule: 3^i epochs at
    1e-3 x 10^(-i/7), i = 0 .. 7."""
    compiled = compile_text(train_spec("Adam(lr=1e-3)", "stages()"), tmp_path)
    (optimizer, scheduler), = compiled.model.configure_optimizers(3280).values()
    rates = []
    for _ in range(3280):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    starts = [0, 1, 4, 13, 40, 121, 364, 1093]   # the sums of 3^j, j < i
    for i, start in enumerate(starts):
        end = starts[i + 1] if i < 7 else 3280
        assert rates[start:end] == pytest.approx([1e-3 * 10 ** (-i / 7)] * (end - start)), i


# ---- initializers ----

@pytest.mark.parametrize("name", sorted(INITS))
def test_initializer(name, tmp_path):
    configs = [a for a in configurations(INITS[name])
               if checks(f"model C {{\n  tensor t: real[200, 50] = {name}({', '.join(a)})\n}}\n").ok]
    assert configs, f"no configuration of {name} passes its own rule"
    for args in configs[:3]:
        compiled = compile_text(f"model C {{\n  tensor t: real[200, 50] = {name}({', '.join(args)})\n}}\n", tmp_path)
        t = compiled.model.t.detach()
        options = {a.split("=")[0]: float(a.split("=")[1]) for a in args}
        assert t.shape == (200, 50)
        check_initial_values(name, options, t)


def check_initial_values(name: str, options: dict, t: torch.Tensor) -> None:
    """What each initializer documents (independent of gendsl's code)."""
    if name == "zeros":
        assert (t == 0).all()
    elif name == "ones":
        assert (t == 1).all()
    elif name == "constant":
        assert (t == options["value"]).all()
    elif name == "normal":
        std, mean = options.get("std", 1.0), options.get("mean", 0.0)
        assert abs(float(t.mean()) - mean) < 0.1 * max(std, 0.1) + 1e-6
        assert abs(float(t.std()) - std) < 0.1 * max(std, 0.1) + 1e-6
    elif name == "uniform":
        low, high = options.get("low", -1.0), options.get("high", 1.0)
        assert float(t.min()) >= low and float(t.max()) < high
    else:
        raise AssertionError(f"initializer {name} has no reference check in this test: add one")


# ---- samplers, diffusion processes, noise schedules ----

@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler(name, tmp_path):
    spec = ("model C {\n  data x: real[2] from ring(n=40)\n  energy E(x) -> real { x |> Linear(8) |> silu |> Linear(1) }\n"
            f"  sampler neg = {name}(E, steps=3)\n  loss cd = mean(E(x)) - mean(E(neg))\n"
            "  train { minimize cd; batch 4; steps 1 }\n  sample x = neg\n}\n")
    compiled = compile_text(spec, tmp_path)
    x = compiled.model.sample_x(5)
    assert x.shape == (5, 2) and torch.isfinite(x).all()


def diffusion_spec(process: str) -> str:
    return ("model C {\n  data x: real[2] from moons(n=40)\n"
            f"  diffusion q(x) = {process}\n"
            "  denoiser eps(x_t: real[2], t: step) -> real[2] { concat(x_t, sinusoidal(t, 8)) |> Linear(2) }\n"
            "  loss simple = q.loss(eps)\n  train { minimize simple; batch 4; steps 1 }\n"
            "  sample x = q.reverse(eps)\n  evaluate { bound }\n}\n")


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_diffusion_process(name, tmp_path):
    compiled = compile_text(diffusion_spec(f"{name}(steps=5)"), tmp_path)
    x = torch.rand(4, 2)
    assert compiled.model.loss_simple({"x": x}).shape == ()
    assert compiled.model.sample_x(4).shape == (4, 2)
    assert compiled.model.bound({"x": x}).shape == (4,)


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_diffusion_process_learned_variances(name, tmp_path):
    """variance=learned: a denoiser of twice the data's first axis trains, samples and bounds."""
    spec = diffusion_spec(f"{name}(steps=5, variance=learned)").replace("-> real[2] {", "-> real[4] {") \
        .replace("Linear(2)", "Linear(4)")
    compiled = compile_text(spec, tmp_path)
    x = torch.rand(4, 2)
    loss = compiled.model.loss_simple({"x": x})
    assert loss.shape == () and torch.isfinite(loss)
    assert compiled.model.sample_x(4).shape == (4, 2)
    bound = compiled.model.bound({"x": x})
    assert bound.shape == (4,) and torch.isfinite(bound).all()


@pytest.mark.parametrize("name", sorted(BETA_SCHEDULES))
def test_noise_schedule(name, tmp_path):
    for args in configurations(BETA_SCHEDULES[name]):
        process = f"Gaussian(steps=6, betas={name}({', '.join(args)}))"
        if checks(diffusion_spec(process)).ok:
            compiled = compile_text(diffusion_spec(process), tmp_path)
            betas = compiled.model.q.betas
            assert betas.shape == (6,) and ((betas > 0) & (betas < 1)).all(), betas
            return
    raise AssertionError(f"no configuration of noise schedule {name} passes its own rule")


# ---- data sources ----

@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    """Small files for the file sources."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    np.save(folder / "x.npy", rng.normal(size=(30, 3)).astype(np.float32))
    np.savez(folder / "d.npz", a=rng.normal(size=(30, 2)).astype(np.float32), b=rng.integers(0, 3, 30))
    for label in ("a", "b"):
        (folder / "images" / label).mkdir(parents=True)
        for i in range(10):
            Image.fromarray((rng.random((6, 6)) * 255).astype(np.uint8)).save(folder / "images" / label / f"{i}.png")
    return {"npy": {"path": str(folder / "x.npy")}, "npz": {"path": str(folder / "d.npz")},
            "image_folder": {"path": str(folder / "images")}}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_data_source(name, data_files):
    from gendsl.data import load
    from gendsl.library.entries import resolve_runtime
    from gendsl.library.signature import bind, call_rule

    entry = SOURCES[name]
    args = dict(data_files.get(name, {}))
    if "synthetic" in entry.tags:
        args["n"] = 40
    values, problems = bind(name, entry.rule, [], args, skip=entry.skip)
    assert not problems, problems
    declared = call_rule(entry.rule, [], values, skip=entry.skip)
    for split in ("train", "valid", "test"):
        arrays = load(name, {k: v for k, v in args.items()}, split)
        assert arrays and len({len(a) for a in arrays}) == 1, (name, split)
        if declared is None:
            continue
        for array, t in zip(arrays, declared):
            if t.kind == "cat":
                assert array.shape[1:] == t.shape and array.min() >= 0 and array.max() < t.classes
            else:
                assert int(np.prod(array.shape[1:])) == t.numel, (name, array.shape, t)
    if "known_density" in entry.tags and entry.density:
        centres, std = resolve_runtime(entry.density)()
        assert centres.shape[1] == 2 and std > 0
    elif "known_density" in entry.tags:  # sequences: their own log density, one value per row
        from gendsl.data.synthetic import log_density

        x = load(name, args, "valid")[0]
        density = log_density(name, x, **{k: v for k, v in args.items() if k != "n"})
        assert density.shape == (len(x),) and np.isfinite(density).all() and (density < 0).all()


# ---- metrics, on tiny trained runs ----

RUNS = {
    "vae": ("model V {\n  data x: real[64] from digits()\n  latent z: real[2] ~ Normal(0, 1)\n"
            "  encoder q(z | x) { h = x |> Linear(8) |> tanh\n"
            "    z ~ Normal(loc = h |> Linear(2), scale = h |> Linear(2) |> softplus) }\n"
            "  decoder p(x | z) { x ~ Normal(loc = z |> Linear(64), scale = 0.5) }\n"
            "  loss elbo = -log p(x | z) + kl(q(z | x), p(z))\n"
            "  train { minimize elbo; batch 8; steps 2 }\n  sample x ~ p(x | z)\n}\n"),
    "gan": ("model G {\n  data x: real[2] from ring(n=200)\n  latent z: real[2] ~ Normal(0, 1)\n"
            "  generator G(z) -> real[2] { z |> Linear(8) |> relu |> Linear(2) }\n"
            "  discriminator D(x) -> logit { x |> Linear(8) |> relu |> Linear(1) }\n"
            "  loss d_loss = bce(D(x), 1) + bce(D(G(z)), 0)\n  loss g_loss = bce(D(G(z)), 1)\n"
            "  train { step d: minimize d_loss over D; step g: minimize g_loss over G; batch 8; steps 2 }\n"
            "  sample x = G(z)\n}\n"),
    "ae": ("model A {\n  data x: real[64] from digits()\n  net enc(x) -> real[4] { x |> Linear(4) }\n"
           "  net dec(h: real[4]) -> real[64] { h |> Linear(64) }\n  loss recon = mse(dec(enc(x)), x)\n"
           "  train { minimize recon; batch 8; steps 2 }\n  sample x = dec(enc(x))\n}\n"),
    "ddpm": diffusion_spec("Gaussian(steps=5)"),
    "hmm": ("model H {\n  data x: cat[3, 5], s: cat[2, 5] from hmm(n=40, states=2, symbols=3, length=5)\n"
            "  tensor a: real[2] = zeros\n  tensor b: real[2, 2] = zeros\n  tensor e: real[2, 3] = normal\n"
            "  latent z: cat[2, 5] ~ Markov(init=a, trans=b)\n  observe x ~ Categorical(logits=e[z])\n"
            "  loss nll = -log p(x)\n  train { minimize nll; batch 8; steps 2 }\n  sample x ~ p(x)\n}\n"),
    "jem": ("model J {\n  data x: real[64], y: cat[10] from digits()\n"
            "  energy F(x: real[64], y: cat[10]) -> real { -sum((x |> Linear(10)) * onehot(y), dim=0) }\n"
            "  sampler neg = Langevin(F, given=y, steps=2, buffer=20)\n"
            "  loss l = mean(cross_entropy(-each_label(F, x), y)) + mean(F(x, y)) - mean(F(neg, y))\n"
            "  train { minimize l; batch 8; steps 2 }\n  sample x = neg\n}\n"),
}
SMALL_OPTIONS = {"k": 4, "samples": 100, "projections": 8, "subsets": 10}


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """Each tiny model trained for 2 rounds, with the capabilities metrics need."""
    import gendsl
    from gendsl.graph.passes.roles import model_capabilities

    runs = {}
    for name, text in RUNS.items():
        folder = tmp_path_factory.mktemp(name)
        spec = folder / f"{name}.gen"
        spec.write_text(text)
        gendsl.train(spec, out=folder / "run", steps=2)
        runs[name] = (folder / "run", model_capabilities(checks(text).graph))
    return runs


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric(name, trained_runs):
    from gendsl.evaluation.metrics import Context, run_metric
    from gendsl.library.signature import parameters as entry_parameters
    from gendsl.runtime.draw import held_out
    from gendsl.runtime.run import load_trained

    runs = [folder for folder, caps in trained_runs.values() if metric_needs(name) in caps]
    assert runs, f"no tiny run has the capability metric {name} needs ({metric_needs(name)})"
    accepted = {p.name for p in entry_parameters(METRICS[name].rule, METRICS[name].skip)}
    options = {k: v for k, v in SMALL_OPTIONS.items() if k in accepted and not (name == "coverage" and k == "k")}
    for folder in runs:
        run, model, device = load_trained(folder, "cpu")
        result = run_metric(Context(model, run.spec, held_out(run.spec, device)), name, options)
        assert result, name
        numbers = [v for v in result.values() if isinstance(v, float)]
        assert all(math.isfinite(v) for v in numbers), (name, result)


# ---- methods of model objects (flows, diffusions) ----

FLOW = ("model C {\n  data x: real[2] from moons(n=40)\n  latent z: real[2] ~ Normal(0, 1)\n"
        "  flow f(x) <-> z { AffineCoupling(hidden=[8]) |> ActNorm }\n  loss nll = -log p(x)\n"
        "  train { minimize nll; batch 4; steps 1 }\n  sample x = f.inverse(z)\n}\n")
METHOD_SPECS = {"flow": FLOW, "diffusion": diffusion_spec("Gaussian(steps=5)"),
                "diffusion.vlb": diffusion_spec("Gaussian(steps=5)").replace("q.loss(eps)", "q.vlb(eps)")}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method(name, tmp_path):
    """Each method runs in a spec that calls it: its loss and its sample have their types."""
    kind, method = name.split(".")
    spec = METHOD_SPECS.get(name, METHOD_SPECS.get(kind, ""))  # a spec of the method's own, else its kind's
    assert f".{method}(" in spec, f"no conformance spec calls {name}: add one to METHOD_SPECS"
    compiled = compile_text(spec, tmp_path)
    x = torch.rand(4, 2)
    loss = getattr(compiled.model, f"loss_{compiled.module.SPEC['losses'][0]}")({"x": x})
    assert loss.shape == () and torch.isfinite(loss)
    sample = compiled.model.sample_x(4)
    assert sample.shape == (4, 2) and torch.isfinite(sample).all()
