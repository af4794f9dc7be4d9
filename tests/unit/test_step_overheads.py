"""The per-step shortcuts of the run-time helpers (bench/README.md, bench_step_time.py) compute
what the code they replaced computed: the diffusion's square-root tables, the cached frequencies
of `sinusoidal`, the per-sample losses without a reshape, ActNorm's Python flag and the trainer's
EMA. Each is compared with the replaced code, kept here as the reference."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gendsl.codegen.helpers.basic import bce, l1, mse, sinusoidal, sinusoidal_frequencies
from gendsl.codegen.helpers.diffusion import GaussianDiffusion
from gendsl.codegen.helpers.flows import ActNorm, AffineCoupling, FlowSequence
from gendsl.runtime.average import WeightAverage


# ---- the replaced code ----

def old_noisy(q, x0, t, noise):
    return q._at(q.bar, t, x0).sqrt() * x0 + (1 - q._at(q.bar, t, x0)).sqrt() * noise


def old_mean(q, x, t, pred):
    return (x - q._at(q.betas, t, x) / (1 - q._at(q.bar, t, x)).sqrt() * pred) / q._at(q.alphas, t, x).sqrt()


def old_sinusoidal(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def old_per_sample_mean(x):
    return x.reshape(x.shape[0], -1).mean(1) if x.dim() > 1 else x


def old_pair_loss(loss):
    def pair(a, b):
        if not torch.is_tensor(b):
            b = torch.full_like(a, float(b))
        return old_per_sample_mean(loss(a, b.expand_as(a), reduction="none"))
    return pair


# ---- diffusion ----

SCHEDULES = [GaussianDiffusion.linear(200, 1e-4, 0.05), GaussianDiffusion.linear(1000, 1e-4, 0.02),
             GaussianDiffusion.cosine(100, 0.008)]


@pytest.mark.parametrize("betas", SCHEDULES, ids=["linear200", "linear1000", "cosine100"])
@pytest.mark.parametrize("shape", [(256, 2), (8, 1, 28, 28)])
def test_noisy_and_mean_from_the_tables_equal_the_square_roots_taken_each_step(betas, shape) -> None:
    torch.manual_seed(0)
    q = GaussianDiffusion(len(betas), betas)
    x0, noise, pred = torch.randn(shape), torch.randn(shape), torch.randn(shape)
    t = torch.randint(0, len(betas), (shape[0],))
    assert torch.equal(q.noisy(x0, t, noise), old_noisy(q, x0, t, noise))
    assert torch.equal(q.mean(x0, t, pred), old_mean(q, x0, t, pred))


def test_the_square_root_tables_are_not_saved_so_earlier_checkpoints_load() -> None:
    q = GaussianDiffusion(50, GaussianDiffusion.linear(50, 1e-4, 0.05))
    earlier = {"betas", "alphas", "bar", "bar_prev", "post_var"}
    assert set(q.state_dict()) == earlier | {"loss_history", "loss_counts"}  # vlb's importance sampling
    fresh = GaussianDiffusion(50, GaussianDiffusion.linear(50, 1e-4, 0.05))
    fresh.load_state_dict({k: v for k, v in q.state_dict().items() if k in earlier})  # strict: an earlier save
    assert torch.equal(fresh.sqrt_bar, q.sqrt_bar)


# ---- sinusoidal ----

@pytest.mark.parametrize("dim", [2, 16, 64, 127])
def test_sinusoidal_with_cached_frequencies_equals_the_table_built_each_call(dim: int) -> None:
    t = torch.randint(0, 1000, (33,))
    assert torch.equal(sinusoidal(t, dim), old_sinusoidal(t, dim))
    assert sinusoidal_frequencies(dim // 2, t.device) is sinusoidal_frequencies(dim // 2, t.device)


def test_a_table_first_built_while_sampling_serves_training() -> None:
    with torch.inference_mode():
        sinusoidal(torch.arange(4), 70)
    net = torch.nn.Linear(70, 1)
    net(sinusoidal(torch.arange(4), 70)).sum().backward()  # an inference tensor here would fail
    assert not sinusoidal_frequencies(35, torch.device("cpu")).is_inference()


def test_sinusoidal_compiles_into_one_graph() -> None:
    t = torch.randint(0, 1000, (16,))
    explained = torch._dynamo.explain(lambda s: sinusoidal(s, 64).sum())(t)
    assert explained.graph_break_count == 0


# ---- per-sample losses ----

PAIRS = [((7, 3), (7, 3)), ((4, 2, 5, 5), (4, 2, 5, 5)), ((6, 4), (1, 4)), ((5, 3, 2), (5, 1, 2)), ((9,), (9,))]


@pytest.mark.parametrize("ours, old", [(mse, old_pair_loss(F.mse_loss)), (l1, old_pair_loss(F.l1_loss)),
                                       (bce, old_pair_loss(F.binary_cross_entropy_with_logits))],
                         ids=["mse", "l1", "bce"])
@pytest.mark.parametrize("shapes", PAIRS)
def test_per_sample_losses_and_their_gradients_equal_the_reshaping_ones(ours, old, shapes) -> None:
    torch.manual_seed(1)
    a = torch.randn(shapes[0], requires_grad=True)
    b = torch.rand(shapes[1], requires_grad=True)
    values, grads = [], []
    for loss in (ours, old):
        value = loss(a, b)
        values.append(value)
        grads.append(torch.autograd.grad(value.mean(), (a, b)))
    assert torch.equal(values[0], values[1])
    assert all(torch.equal(g, h) for g, h in zip(*grads))
    assert torch.equal(ours(a, 0.5), old(a, 0.5))  # a number as the target


# ---- ActNorm ----

def flow() -> FlowSequence:
    return FlowSequence(AffineCoupling(2, [16]), ActNorm(2), AffineCoupling(2, [16]), ActNorm(2))


def nll(model: FlowSequence, x: torch.Tensor) -> torch.Tensor:
    z, logdet = model(x)
    return (0.5 * z.pow(2).sum(-1) - logdet).mean()


def test_a_flow_with_actnorm_compiles_without_graph_breaks() -> None:
    torch.manual_seed(2)
    model = flow().train()
    x = torch.randn(64, 2)
    compiled = torch.compile(lambda batch: nll(model, batch), fullgraph=True)
    first = compiled(x)  # initializes the ActNorms inside the graph
    reference = copy.deepcopy(model)
    assert all(bool(m.initialized) and m.is_initialized for m in model.layers if isinstance(m, ActNorm))
    torch.testing.assert_close(first, nll(reference, x))
    assert torch._dynamo.explain(lambda batch: nll(model, batch))(x).graph_break_count == 0


def test_loading_a_state_dict_sets_the_flag_from_the_saved_buffer() -> None:
    torch.manual_seed(3)
    trained = flow().train()
    nll(trained, torch.randn(64, 2) * 3 + 1)
    for saved, expected in ((trained.state_dict(), True), (flow().state_dict(), False)):
        loaded = flow().train()
        loaded.load_state_dict(saved)
        assert [m.is_initialized for m in loaded.layers if isinstance(m, ActNorm)] == [expected] * 2
    loaded = flow().train()
    loaded.load_state_dict(trained.state_dict())
    nll(loaded, torch.randn(64, 2))  # a second batch must not set the layers again
    assert all(torch.equal(a, b) for a, b in zip(loaded.parameters(), trained.parameters()))


def test_a_layer_whose_buffer_was_set_from_outside_is_not_set_again() -> None:
    torch.manual_seed(5)
    trained = flow().train()
    nll(trained, torch.randn(64, 2) * 3 + 1)
    copied = flow().train()  # as an EMA's copy: the buffers and weights written, the flags not
    with torch.no_grad():
        for mine, theirs in zip(copied.state_dict().values(), trained.state_dict().values()):
            mine.copy_(theirs)
    nll(copied, torch.randn(64, 2))
    assert all(torch.equal(a, b) for a, b in zip(copied.parameters(), trained.parameters()))


# ---- EMA ----

class Mixed(torch.nn.Module):
    """Parameters, BatchNorm's float and integer buffers, ActNorm's flag, a constant table."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
        self.norm = ActNorm(2)
        self.register_buffer("table", torch.linspace(0, 1, 5))

    def forward(self, x):
        return self.norm(self.net(x))[0].pow(2).mean()


def test_weight_average_equals_torchs_averaged_model_and_keeps_its_state_dict() -> None:
    torch.manual_seed(4)
    model = Mixed().train()
    ours = WeightAverage(model, 0.9)
    theirs = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for step in range(6):
        optimizer.zero_grad()
        model(torch.randn(16, 3)).backward()
        optimizer.step()
        ours.update_parameters(model)
        theirs.update_parameters(model)
        if step == 2:  # resume: a fresh average loaded from the saved one goes on the same way
            ours = WeightAverage(Mixed(), 0.9)
            ours.load_state_dict(theirs.state_dict())
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(reference)
    assert all(torch.equal(mine[k], reference[k]) for k in reference), \
        [k for k in reference if not torch.equal(mine[k], reference[k])]
    assert ours.module.norm.is_initialized


# ---- resume through the trainer ----

FLOW_SPEC = """
model Normalized {
  data x: real[2] from ring(n=256)
  latent z: real[2] ~ Normal(0, 1)
  flow f(x) <-> z { AffineCoupling(hidden=[8]) |> ActNorm |> AffineCoupling(hidden=[8]) |> ActNorm }
  loss nll = -log p(x)
  train { optimizer Adam(lr=1e-2); minimize nll; batch 32; steps 6; ema 0.9; checkpoint_every 3;
          log_every 3; validate_every 0; sample_every 0 }
  sample x = f.inverse(z)
}
"""


def train(spec: Path, folder: Path, steps: int, resume: bool = False) -> dict:
    from gendsl.runtime.loop import Options, Trainer
    from gendsl.runtime.run import create

    run, _ = create(folder, str(spec), [], None, resume=resume)
    trainer = Trainer(run, Options(device="cpu", seed=5, steps=steps, resume=resume, quiet=True))
    trainer.fit()
    # the generated file has its own copy of ActNorm: found by name
    norms = [m for m in trainer.model.modules() if type(m).__name__ == "ActNorm"]
    averaged = [m for m in trainer.ema.module.modules() if type(m).__name__ == "ActNorm"]
    assert len(norms) == 2 and all(m.is_initialized for m in norms) and trainer.ema.started
    assert len(averaged) == 2 and all(bool(m.initialized) for m in averaged)
    return {"model": trainer.model.state_dict(), "ema": trainer.ema.state_dict()}


def test_a_resumed_flow_keeps_its_actnorm_set_and_its_ema_and_ends_where_a_whole_run_does(tmp_path: Path) -> None:
    spec = tmp_path / "normalized.gen"
    spec.write_text(FLOW_SPEC)
    whole = train(spec, tmp_path / "whole", 6)
    train(spec, tmp_path / "stopped", 3)
    resumed = train(spec, tmp_path / "stopped", 6, resume=True)  # an ActNorm set again would differ
    for part in ("model", "ema"):
        assert all(torch.equal(whole[part][k], resumed[part][k]) for k in whole[part]), part
