"""`log p(x)` with discrete latents summed out equals the sum written out by hand: one pass of
the factor per value of the latents, each on an ordinary batch (networks see labels as a batch,
whatever per-sample operations they use)."""

from __future__ import annotations

import itertools

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import check_source
from gendsl.source import SourceFile

SPEC = """
model Mixture {{
  data x: real[2, 2] from npy(path="x.npy")
  tensor la: real[{a}] = normal
  tensor lb: real[{b}] = normal
  latent c: cat[{a}] ~ Categorical(logits = la)
  latent d: cat[{b}] ~ Categorical(logits = lb)
  net m(c: cat[{a}], d: cat[{b}]) -> real[2, 2] {{ concat(onehot(c), onehot(d)) |> Linear(4) |> reshape(2, 2) }}
  observe x ~ Normal(m(c, d), 0.7)
  loss nll = -log p(x)
}}
"""


@settings(max_examples=8, deadline=None)
@given(a=st.integers(1, 4), b=st.integers(1, 3), batch=st.integers(1, 5))
def test_summed_out_latents_equal_the_sum_by_hand(a, b, batch):
    text = SPEC.format(a=a, b=b)
    checked = check_source(SourceFile("mixture.gen", text))
    assert checked.ok, [d.message for d in checked.diagnostics]
    model = load_generated(generate(checked.graph, "mixture.gen", text).source).build()
    x = torch.randn(batch, 2, 2)
    terms = []
    for i, j in itertools.product(range(a), range(b)):
        c, d = torch.full((batch,), i), torch.full((batch,), j)
        loc = model.m(c, d)
        log_x = torch.distributions.Normal(loc, 0.7).log_prob(x).sum((1, 2))
        terms.append(model.prior_c().log_prob(c) + model.prior_d().log_prob(d) + log_x)
    expected = torch.logsumexp(torch.stack(terms), 0)
    assert torch.allclose(model.log_p_x(x), expected, atol=1e-5), (model.log_p_x(x), expected)
