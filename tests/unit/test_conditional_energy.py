"""Energies of an input and a label, F(x, y): `each_label(F, x)` equals F called at every label,
Langevin `given=y` follows the gradient of F(x, y) for each row's own y (and keeps a buffer per
label), the generated `predict_y` is the label of lowest energy, and misuses are refused."""

from __future__ import annotations

import pytest
import torch

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import check_source
from gendsl.source import SourceFile

SPEC = """model E {
  data x: real[2], y: cat[3] from npz(path="d.npz")
  tensor centres: real[3, 2] = normal(std=2.0)
  energy F(x: real[2], y: cat[3]) -> real { sum((x - centres[y]) ^ 2, dim=0) / 2 }
  sampler neg = Langevin(F, given=y, steps=STEPS, step_size=0.05, noise=0.0, buffer=30, reinit=0.0, low=-1, high=1)
  loss labels = mean(cross_entropy(-each_label(F, x), y))
  loss inputs = mean(F(x, y)) - mean(F(neg, y))
  loss both = labels + inputs
  train { minimize both; batch 8; steps 2 }
  sample x = neg
}
"""


def build(text: str):
    checked = check_source(SourceFile(path="e.gen", text=text))
    assert checked.ok, [f"{d.code} {d.message}" for d in checked.diagnostics]
    return load_generated(generate(checked.graph, "e.gen", text).source).build().eval()


def errors(text: str) -> list[str]:
    return [d.code for d in check_source(SourceFile(path="e.gen", text=text)).diagnostics if d.severity == "error"]


def test_each_label_is_the_network_at_every_label():
    model = build(SPEC.replace("STEPS", "5"))
    x, y = torch.randn(6, 2), torch.randint(3, (6,))
    by_hand = torch.stack([model.F(x, torch.full((6,), k), model.centres) for k in range(3)], 1)
    torch.testing.assert_close(-(-by_hand).log_softmax(1)[torch.arange(6), y].mean(), model.loss_labels({"x": x, "y": y}))


def test_langevin_given_a_label_descends_that_labels_energy():
    model = build(SPEC.replace("STEPS", "400"))
    y = torch.arange(30) % 3
    energy = lambda x, y: model.F(x, y, model.centres)  # noqa: E731 (F reads the model's tensor)
    samples = model.neg(energy, 30, given=y)            # noise 0: gradient descent on F(x, y)
    torch.testing.assert_close(samples, model.centres[y].detach(), atol=1e-3, rtol=0)
    # each label's share of the buffer holds that label's chains only (and start values it has not reused)
    memory = model.neg.memory.view(3, 10, 2)
    distance = (memory[:, :, None] - model.centres.detach()[None, None]).norm(dim=-1)   # [share, slot, centre]
    at = distance.argmin(-1)[distance.min(-1).values < 1e-3]
    shares = torch.arange(3)[:, None].expand(3, 10)[distance.min(-1).values < 1e-3]
    assert len(at) >= 10 and (at == shares).all()


def test_samples_cycle_through_the_labels():
    model = build(SPEC.replace("STEPS", "400"))
    samples = model.sample_x(9)
    torch.testing.assert_close(samples, model.centres[torch.arange(9) % 3].detach(), atol=1e-3, rtol=0)


@pytest.mark.parametrize("edit", [
    ("given=y", "given=centres"),                   # given a tensor, not data
    ("given=y, ", ""),                              # a two-input energy needs given=
    ("energy F(x: real[2], y: cat[3])", "energy F(x: real[2], y: cat[4])"),  # label types differ
])
def test_misuses_of_given_are_refused(edit):
    text = SPEC.replace("STEPS", "5").replace(*edit)
    found = errors(text)
    assert "E311" in found, found  # (a label of another type is also refused where the losses use F)


def test_each_label_needs_a_network_of_a_label():
    text = SPEC.replace("STEPS", "5").replace("-each_label(F, x)", "-each_label(G, x)").replace(
        "  sampler", "  net G(x: real[2]) -> real { x |> Linear(1) }\n  sampler")
    assert errors(text) == ["E220"]
