"""Conditional flows `flow f(x | y) <-> z`: the generated log p(x | y) is log N(f(x; y); 0, I) plus
the log-determinant of the Jacobian of x -> f(x; y), computed here by autograd; the inverse given
the same y undoes the flow; the couplings read y; the parameter count includes the context; and
uses the checker cannot honour are refused with a code."""

from __future__ import annotations

import pytest
import torch

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import check_source
from gendsl.source import SourceFile

SPEC = """model C {
  data x: real[3], y: GIVEN from FILE
  latent z: real[3] ~ Normal(0, 1)
  flow f(x | y) <-> z {
    repeat 2 { LAYER(hidden=[16]) |> ActNorm |> InvertibleLinear }
  }
  loss nll = -log p(x | y)
  train { minimize nll; batch 8; steps 2 }
  sample x = f.inverse(z, y)
}
"""


def spec(given: str = "cat[4]", layer: str = "AffineCoupling", source: str = 'npz(path="d.npz")') -> str:
    return SPEC.replace("GIVEN", given).replace("LAYER", layer).replace("FILE", source)


def build(text: str):
    checked = check_source(SourceFile(path="c.gen", text=text))
    assert checked.ok, [f"{d.code} {d.message}" for d in checked.diagnostics]
    model = load_generated(generate(checked.graph, "c.gen", text).source).build()
    return checked, model.eval()


def randomize(model) -> None:
    """Away from the identity the couplings start at, so that the context matters."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))


@pytest.mark.parametrize("layer", ["AffineCoupling", "SplineCoupling"])
@pytest.mark.parametrize("given, make", [
    ("cat[4]", lambda n: torch.randint(4, (n,))),
    ("real[2]", lambda n: torch.randn(n, 2)),
])
def test_log_density_is_prior_of_image_plus_jacobian(layer, given, make):
    _, model = build(spec(given, layer))
    randomize(model)
    flow = next(m for m in model.modules() if type(m).__name__.startswith("Flow"))
    x, y = torch.randn(5, 3).double(), make(5)
    model.double()
    y = y.double() if y.is_floating_point() else y
    log_p = model.log_prob({"x": x, "y": y})
    for i in range(5):
        def image(row):
            return flow(row[None], y[i:i + 1])[0][0]
        jacobian = torch.autograd.functional.jacobian(image, x[i])
        z = image(x[i])
        expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum() + torch.linalg.slogdet(jacobian)[1]
        torch.testing.assert_close(log_p[i], expected, rtol=1e-6, atol=1e-6)
    back = flow.inverse(flow(x, y)[0], y)
    torch.testing.assert_close(back, x, rtol=1e-5, atol=1e-5)
    other = make(5)
    other = other.double() if other.is_floating_point() else other
    assert not torch.allclose(flow(x, y)[0], flow(x, other)[0])  # the couplings read the context


def test_parameter_count_includes_the_context():
    checked, model = build(spec("cat[4]"))
    flow = checked.graph.nodes["f"]["data"]
    assert flow.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("edit, code", [
    (("-log p(x | y)", "-log p(x)"), "E215"),                      # the flow defines p(x | y), not p(x)
    (("f.inverse(z, y)", "f.inverse(z)"), "E203"),                 # a conditional inverse needs y
    (("flow f(x | y)", "flow f(x | z)"), "E305"),                  # given a latent, not data
    (("flow f(x | y)", "flow f(x | x)"), "E305"),                  # given its own input
    (("flow f(x | y)", "flow f(x | y, y)"), "E305"),               # one condition
])
def test_misuses_are_refused(edit, code):
    text = spec().replace(*edit)
    if edit[1].startswith("flow"):  # the loss names the same condition, so that only the flow is wrong
        text = text.replace("-log p(x | y)", "-log p(x | " + edit[1].split("| ")[1].split(")")[0] + ")")
    found = [d for d in check_source(SourceFile(path="c.gen", text=text)).diagnostics if d.severity == "error"]
    assert [d.code for d in found] == [code], [f"{d.code} {d.message}" for d in found]
    assert found[0].span is not None and found[0].hint
