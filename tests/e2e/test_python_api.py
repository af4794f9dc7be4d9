"""The Python API keeps its functions: importing the modules that implement them must not shadow
`gendsl.train`, `gendsl.render` or `gendsl.evaluate` (a second call once failed with "'module'
object is not callable")."""

from __future__ import annotations

import gendsl

SPEC = """
model Tiny {
  data x: real[2] from ring(n=40)
  latent z: real[2] ~ Normal(0, 1)
  generator G(z) -> real[2] { z |> Linear(4) |> relu |> Linear(2) }
  loss l = mse(G(z), x)
  train { minimize l; batch 8; steps 2 }
  sample x = G(z)
}
"""


def test_api_functions_can_be_called_twice(tmp_path):
    spec = tmp_path / "tiny.gen"
    spec.write_text(SPEC)
    for attempt in ("a", "b"):
        assert gendsl.render(spec, tmp_path / f"{attempt}.dot")
        run = gendsl.train(spec, out=tmp_path / attempt, steps=2)
        assert gendsl.evaluate(run, ["losses"])["losses"]["l"] > 0
        assert gendsl.sample(run, tmp_path / f"{attempt}.png", n=4).exists()
    assert callable(gendsl.train) and callable(gendsl.render) and callable(gendsl.evaluate)
