"""Walkthrough of gendsl's Python API on a small GAN: check, draw, compile, train, sample,
evaluate. Run from the repository root: .venv/bin/python examples/python_api.py (about a minute).
"""

from pathlib import Path

import gendsl

SPEC = "specs/gan_ring.gen"
OUT = Path("runs/example_gan")

checked = gendsl.check(SPEC, set=["width=64"])                  # no torch imported yet
print("checked:", checked.ok, "- networks:",
      [k for k, d in checked.graph.nodes(data=True) if d["data"].kind == "net"])

print("diagram:", gendsl.render(SPEC, OUT / "diagram.svg", set=["width=64"]))

source = gendsl.compile(SPEC, set=["width=64"])
print("generated", len(source.splitlines()), "lines of PyTorch; the critic's step:")
print(source[source.index("    def step_critic"):source.index("    def step_gen")])

gendsl.train(SPEC, out=OUT, set=["width=64"], steps=3000, seed=0)
model = gendsl.load(OUT)                                         # a plain nn.Module
print("five samples:", model.sample_x(5))
print("grid:", gendsl.sample(OUT, OUT / "samples.png"))
print("coverage:", gendsl.evaluate(OUT, ["coverage"])["coverage"])
