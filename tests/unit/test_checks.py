"""What the checker refuses and accepts so that "checked" means "trains and computes what it says"
(issue 10: reproducers 3b, 3c, 7b, 7c, and distribution supports owned by their entries).

Each refusal asserts its code, the line it points at and that it has a hint; where a hint
proposes a fix, the fixed spec is checked too, so that hints describe fixes that work.
"""

from __future__ import annotations

import textwrap

import pytest
import torch

from gendsl.codegen import generate, load_generated
from gendsl.diagnostics import Diagnostic
from gendsl.graph.check import Checked, check_source
from gendsl.library.distributions import DISTRIBUTIONS, families_for, support_of
from gendsl.source import SourceFile
from gendsl.types import TensorType


def check(text: str) -> Checked:
    return check_source(SourceFile("test.gen", textwrap.dedent(text)))


def refused(text: str, code: str, line: int) -> Diagnostic:
    """The spec is refused with `code` at `line`, with a hint; the diagnostic."""
    checked = check(text)
    assert not checked.ok, "expected the spec to be refused"
    found = [d for d in checked.diagnostics if d.code == code and d.is_error]
    assert found, [f"{d.code} {d.message}" for d in checked.diagnostics]
    assert found[0].span.line == line, (found[0].span.line, found[0].message)
    assert found[0].hint, f"{code} has no hint: {found[0].message}"
    return found[0]


def accepted(text: str) -> Checked:
    checked = check(text)
    assert checked.ok, [f"{d.code} {d.span.line}: {d.message}" for d in checked.diagnostics]
    return checked


def warnings(checked: Checked) -> list[str]:
    return [d.code for d in checked.diagnostics if not d.is_error]


def node(checked: Checked, key: str):
    return checked.graph.nodes[key]["data"]


def compiled(checked: Checked, text: str):
    return load_generated(generate(checked.graph, "test.gen", textwrap.dedent(text)).source).build()


# ---- 3b: Langevin samples the one input of an energy ----

ENERGY_TWO_INPUTS = """\
model M {
  data x: real[64], y: cat[10] from digits()
  energy F(x, y) -> real { concat(x, onehot(y)) |> Linear(32) |> silu |> Linear(1) }
  sampler neg = Langevin(F, steps=5)
  loss cd = mean(F(x, y)) - mean(F(neg, y))
  train { minimize cd; batch 16; steps 10 }
}
"""


def test_langevin_on_an_energy_of_two_inputs_is_refused():
    d = refused(ENERGY_TWO_INPUTS, "E311", 4)
    assert "exactly one input" in d.message and "F" in d.hint


def test_langevin_on_an_energy_of_a_label_is_refused():
    d = refused("""\
        model M {
          data x: real[64], y: cat[10] from digits()
          energy E(y) -> real { onehot(y) |> Linear(16) |> silu |> Linear(1) }
          sampler neg = Langevin(E, steps=5)
          loss cd = mean(E(y)) - mean(E(neg))
          train { minimize cd; batch 16; steps 10 }
        }
        """, "E311", 4)
    assert "real-valued" in d.message


def test_langevin_on_an_energy_of_one_input_is_accepted():
    checked = accepted("""\
        model M {
          data x: real[1, 8, 8], y: cat[10] from digits()
          energy E(x) -> real { x |> flatten |> Linear(16) |> silu |> Linear(1) }
          sampler neg = Langevin(E, steps=3)
          loss cd = mean(E(x)) - mean(E(neg))
          train { minimize cd; batch 16; steps 10 }
        }
        """)
    assert node(checked, "neg").type == TensorType(shape=(1, 8, 8))


# ---- 3c: no step with an empty parameter list ----

GAN = """\
model M {
  data x: real[2] from ring(modes=8, radius=2.0, std=0.02)
  latent z: real[2] ~ Normal(0, 1)
  tensor w: real[2] = ones
  generator G(z) -> real[2] { GENERATOR }
  discriminator D(x) -> logit { x |> Linear(32) |> relu |> Linear(1) }
  loss d_loss = bce(D(x), 1) + bce(D(G(z)), 0)
  loss g_loss = bce(D(G(z)), 1)
  train {
    step critic: minimize d_loss over D
    step gen: minimize g_loss over OVER
    batch 16; steps 10
  }
}
"""


def gan(generator: str = "z |> Linear(2)", over: str = "G") -> str:
    return GAN.replace("GENERATOR", generator).replace("OVER", over)


def test_step_over_a_network_without_parameters_is_refused():
    d = refused(gan("z |> relu", "G"), "E315", 11)
    assert "no parameters" in d.message and "Linear" in d.hint


def test_step_over_a_network_that_only_computes_with_a_tensor_names_the_tensor():
    d = refused(gan("z * w", "G"), "E315", 11)
    assert "w" in d.hint
    checked = accepted(gan("z * w", "w"))  # the hint's fix
    assert node(checked, "step:gen").over == ("w",)


def test_step_over_a_parameter_free_network_beside_another_is_refused():
    refused(gan("z |> relu", "G, D"), "E315", 11)


def test_minimize_that_reaches_no_parameters_is_refused():
    d = refused("""\
        model M {
          data x: real[2] from ring(modes=8, radius=2.0, std=0.02)
          latent z: real[2] ~ Normal(0, 1)
          generator G(z) -> real[2] { z |> relu }
          loss l = mse(G(z), x)
          train { minimize l; batch 16; steps 10 }
        }
        """, "E315", 6)
    assert "nothing to train" in d.message


def test_minimize_that_reaches_parameters_only_past_detach_is_refused():
    d = refused("""\
        model M {
          data x: real[2] from ring(modes=8, radius=2.0, std=0.02)
          latent z: real[2] ~ Normal(0, 1)
          generator G(z) -> real[2] { z |> Linear(2) }
          loss l = mse(detach(G(z)), x)
          train { minimize l; batch 16; steps 10 }
        }
        """, "E315", 6)
    assert "detach" in d.hint


def test_step_over_a_density_whose_blocks_have_no_parameters_names_their_tensors():
    d = refused("""\
        model M {
          data x: real[2] from ring(modes=8, radius=2.0, std=0.1)
          tensor mu: real[2] = zeros
          tensor log_s: real[2] = zeros
          observe x ~ Normal(mu, exp(log_s))
          loss nll = -log p(x)
          train { minimize nll over p; batch 16; steps 10 }
        }
        """, "E315", 7)
    assert "log_s, mu" in d.hint


def test_step_over_a_network_used_only_past_detach_is_refused():
    d = refused(gan("z |> Linear(2)", "G").replace("bce(D(G(z)), 1)", "bce(D(detach(G(z))), 1)"), "E316", 11)
    assert "detach" in d.hint


def test_repeated_names_in_over_train_once():
    checked = accepted(gan("z |> Linear(2)", "G, G"))
    assert node(checked, "step:gen").over == ("G",)


# ---- 7c: fixed tensors, and hints whose fixes work ----

INFOGAN = """\
model M {
  data x: real[2] from ring(modes=8, radius=2.0, std=0.02)
  tensor pi: real[10] = zeros
  latent c: cat[10] ~ Categorical(logits = PRIOR)
  latent z: real[4] ~ Normal(0, 1)
  generator G(z, c) -> real[2] { concat(z, onehot(c)) |> Linear(32) |> relu |> Linear(2) }
  discriminator D(x) -> logit { x |> Linear(32) |> relu |> Linear(1) }
  loss d_loss = bce(D(x), 1) + bce(D(G(z, c)), 0)
  loss g_loss = bce(D(G(z, c)), 1) EXTRA
  train {
    step critic: minimize d_loss over D
    step gen: minimize g_loss over OVER
    batch 16; steps 10
  }
  sample x = G(z, c)
}
"""


def infogan(prior: str = "pi", extra: str = "", over: str = "G") -> str:
    return INFOGAN.replace("PRIOR", prior).replace("EXTRA", extra).replace("OVER", over)


def test_a_fixed_prior_tensor_is_accepted_and_trained_by_no_step():
    checked = accepted(infogan())
    assert not warnings(checked)
    assert all("pi" not in node(checked, s).over for s in ("step:critic", "step:gen"))


def test_a_fixed_prior_tensor_gets_no_gradient_in_the_generated_steps():
    text = infogan()
    model = compiled(accepted(text), text)
    batch = {"x": torch.randn(8, 2)}
    for step in (model.step_critic, model.step_gen):
        step(batch).backward()
    assert model.pi.grad is None


def test_detach_is_honoured_inside_a_prior():
    checked = accepted(infogan(prior="detach(pi)"))
    assert not warnings(checked)


def test_over_a_tensor_reached_only_through_a_categorical_sample_is_refused_with_a_working_hint():
    d = refused(infogan(over="G, pi"), "E318", 12)
    assert "leave it out of `over`" in d.hint
    accepted(infogan(over="G"))


def test_a_tensor_a_gradient_reaches_but_no_step_trains_is_refused_with_working_hints():
    d = refused(infogan(extra="+ mean(pi)"), "E317", 3)
    assert "detach(pi)" in d.hint and "gen (g_loss)" in d.hint
    accepted(infogan(extra="+ mean(detach(pi))"))    # the first fix: keep it fixed
    accepted(infogan(prior="detach(pi)", extra="+ mean(pi)", over="G, pi"))  # the second: train it


def test_detach_is_honoured_inside_a_network():
    text = """\
        model M {
          data x: real[2] from ring(modes=8, radius=2.0, std=0.02)
          tensor t: real[2] = ones
          net f(x) -> real[2] { h = x * detach(t)
            h |> Linear(2) }
          loss l = mse(f(x), x)
          train { step s: minimize l over f; batch 16; steps 10 }
        }
        """
    assert not warnings(accepted(text))
    refused(text.replace("detach(t)", "t"), "E317", 3)


def test_a_network_used_only_past_detach_and_trained_by_no_step_is_a_warning():
    checked = accepted(gan("z |> Linear(2)", "G").replace("bce(D(G(z)), 0)", "bce(D(detach(G(z))), 0)")
                       .replace("loss g_loss = bce(D(G(z)), 1)", "loss g_loss = bce(D(x), 1)")
                       .replace("over G", "over D"))
    assert "W303" in warnings(checked)


def test_a_flow_likelihood_reaches_the_tensors_of_the_latents_prior():
    checked = accepted("""\
        model M {
          data x: real[2] from ring(modes=8, radius=2.0, std=0.1)
          tensor m: real[2] = zeros
          latent z: real[2] ~ Normal(m, 1)
          flow f(x) <-> z { AffineCoupling(mask=alternate, hidden=[8]) |> ActNorm }
          loss nll = -log p(x)
          train { minimize nll; batch 16; steps 10 }
        }
        """)
    assert node(checked, "step:nll").over == ("m", "f")   # declaration order


# ---- 7b: numbers broadcast to the declared type ----

@pytest.mark.parametrize("latent, prior", [
    ("real[3, 2]", "Normal(0, 1)"), ("real[4]", "Laplace(0, 0.5)"), ("real[4]", "Uniform(-1, 1)"),
    ("bin[5]", "Bernoulli(logits = 0)"), ("bin[5]", "Bernoulli(probs = 0.3)"), ("real[5]", "Bernoulli(probs = 0.3)"),
    ("cat[10]", "Categorical(logits = 0)"), ("cat[7]", "Categorical(probs = 0.5)"),
])
def test_numbers_in_a_prior_broadcast_to_the_declared_type(latent: str, prior: str):
    checked = accepted(f"""\
        model M {{
          data x: real[2] from ring(modes=8, radius=2.0, std=0.02)
          latent c: {latent} ~ {prior}
          net f(x) -> real[2] {{ x |> Linear(2) }}
          loss l = mse(f(x), x)
          train {{ minimize l; batch 16; steps 10 }}
        }}
        """)
    declared, event = node(checked, "c").type, node(checked, "c").prior.type.event
    assert (event.shape, event.classes) == (declared.shape, declared.classes)


def test_a_prior_of_number_logits_samples_its_declared_categories():
    text = infogan(prior="0")
    model = compiled(accepted(text), text)
    prior = model.prior_c()
    assert prior.sample((5,)).shape == (5,)
    assert torch.allclose(prior.log_prob(torch.arange(10)), torch.full((10,), -torch.log(torch.tensor(10.0))))


def test_numbers_in_a_draw_broadcast_against_the_computed_parameter():
    checked = accepted("""\
        model M {
          data x: real[64], y: cat[10] from digits()
          latent z: real[4] ~ Normal(0, 1)
          encoder q(z | x) { z ~ Normal(loc = x |> Linear(4), scale = 1) }
          decoder p(x | z) { x ~ Normal(loc = z |> Linear(64), scale = 0.5) }
          loss elbo = -log p(x | z) + kl(q(z | x), p(z))
          train { minimize elbo; batch 16; steps 10 }
        }
        """)
    decoder = next(d["data"] for _, d in checked.graph.nodes(data=True) if getattr(d["data"], "role", "") == "decoder")
    draw = decoder.program.stmts[0].dist
    assert draw.type.event.shape == (64,)


DECODER = """\
model M {
  data x: real[64], y: cat[10] from digits()
  latent z: real[4] ~ Normal(0, 1)
  decoder p(x | z) { DRAW }
  loss nll = -log p(x | z)
  train { minimize nll; batch 16; steps 10 }
}
"""


def test_a_draw_of_numbers_only_in_a_block_is_refused():
    d = refused(DECODER.replace("DRAW", "x ~ Normal(0, 1)"), "E226", 4)
    assert "only numbers" in d.message and "prior" in d.hint


def test_a_per_sample_parameter_with_fewer_dims_than_the_variable_is_refused():
    d = refused(DECODER.replace("DRAW", "x ~ Normal(loc = z |> Linear(64), scale = s(z))")
                .replace("  loss", "  net s(z) -> real { z |> Linear(1) |> softplus }\n  loss"), "E226", 4)
    assert "as many dims" in d.hint


def test_parameters_that_broadcast_to_less_than_the_variable_are_refused():
    d = refused(DECODER.replace("DRAW", "x ~ Normal(loc = z |> Linear(1), scale = 1)"), "E226", 4)
    assert "Linear(64)" in d.hint


def test_a_prior_tensor_of_another_shape_is_refused_at_the_parameter():
    d = refused("""\
        model M {
          data x: real[2] from ring(modes=8, radius=2.0, std=0.02)
          tensor m: real[16] = zeros
          latent z: real[8] ~ Normal(m, 1)
          net f(z) -> real[2] { z |> Linear(2) }
          loss l = mse(f(z), x)
          train { minimize l; batch 16; steps 10 }
        }
        """, "E226", 4)
    assert d.span.col == len("  latent z: real[8] ~ Normal(") + 1 and "real[8]" in d.hint  # at m


def test_categorical_logits_with_two_dims_are_refused():
    refused("""\
        model M {
          data x: real[2] from ring(modes=8, radius=2.0, std=0.02)
          tensor t: real[3, 4] = zeros
          latent c: cat[4] ~ Categorical(logits = t)
          net f(x) -> real[2] { x |> Linear(2) }
          loss l = mse(f(x), x)
          train { minimize l; batch 16; steps 10 }
        }
        """, "E226", 4)


@pytest.mark.parametrize("prior, words", [
    ("Normal(0, 0)", "scale must be > 0"), ("Bernoulli(probs = 1.5)", "probs must be in [0, 1]"),
    ("Uniform(1, 0)", "low < high"), ('Normal("a", 1)', "must be a number"),
])
def test_constant_parameters_out_of_range_are_refused(prior: str, words: str):
    checked = check(f"""\
        model M {{
          data x: real[2] from ring(modes=8, radius=2.0, std=0.02)
          latent z: real[2] ~ {prior}
          net f(z) -> real[2] {{ z |> Linear(2) }}
          loss l = mse(f(z), x)
          train {{ minimize l; batch 16; steps 10 }}
        }}
        """)
    found = [d for d in checked.diagnostics if d.code == "E220"]
    assert found and words in found[0].message and found[0].span.line == 3


# ---- distributions own their supports ----

def test_every_distribution_declares_its_support():
    for name, entry in DISTRIBUTIONS.items():
        support = support_of(name)
        # chains and point masses score no data (they draw latents)
        assert support is entry.support and (support.scores or support.chain or support.point_mass), name
        assert support.can_draw_into(support.draws), name


def test_supports_of_the_families():
    assert support_of("Normal").scores == ("real", "bin")
    assert support_of("Bernoulli").can_score("real") and "[0, 1]" in support_of("Bernoulli").describe()
    assert support_of("Categorical").scores == ("cat",)
    assert families_for("cat", drawn=False) == ["Categorical"]
    assert "Normal" not in families_for("bin", drawn=True)


def test_data_of_a_kind_the_family_cannot_score_is_refused():
    d = refused("""\
        model M {
          data x: real[2] from ring(modes=8, radius=2.0, std=0.1)
          tensor t: real[2] = zeros
          observe x ~ Categorical(logits = t)
          loss nll = -log p(x)
          train { minimize nll; batch 16; steps 10 }
        }
        """, "E226", 4)
    assert "Categorical models cat data" in d.message and "Normal" in d.hint


def test_a_latent_of_a_kind_the_family_does_not_draw_is_refused():
    d = refused(gan().replace("latent z: real[2] ~ Normal(0, 1)", "latent z: bin[2] ~ Normal(0, 1)"), "E226", 3)
    assert "Bernoulli" in d.hint


def test_bin_data_scored_by_a_normal_is_accepted():
    accepted(DECODER.replace("real[64], y: cat[10] from digits()", "bin[784] from binarized_mnist()")
             .replace("DRAW", "x ~ Normal(loc = z |> Linear(784), scale = 1)"))


def test_a_flow_needs_a_prior_with_a_density_everywhere():
    d = refused("""\
        model M {
          data x: real[2] from ring(modes=8, radius=2.0, std=0.1)
          latent z: real[2] ~ Uniform(-1, 1)
          flow f(x) <-> z { AffineCoupling(mask=alternate, hidden=[8]) |> ActNorm }
          loss nll = -log p(x)
          train { minimize nll; batch 16; steps 10 }
        }
        """, "E305", 3)
    assert "Normal" in d.hint


# ---- distributions only where they are drawn from ----

def test_a_draw_inside_a_network_is_refused():
    refused("""\
        model M {
          data x: real[64], y: cat[10] from digits()
          net f(x) -> real[4] {
            z ~ Normal(0, 1)
            x |> Linear(4)
          }
          loss l = mean(f(x))
          train { minimize l; batch 16; steps 10 }
        }
        """, "E210", 4)


def test_a_distribution_as_a_value_inside_a_network_is_refused():
    refused("""\
        model M {
          data x: real[64], y: cat[10] from digits()
          net f(x) -> real[4] {
            n = Normal(0, 1)
            x |> Linear(4)
          }
          loss l = mean(f(x))
          train { minimize l; batch 16; steps 10 }
        }
        """, "E210", 4)


# ---- other specs that passed check and crashed later ----

def test_a_flow_layer_inside_a_network_is_refused():
    d = refused("""\
        model M {
          data x: real[2] from ring(n=64)
          net f(x) -> real[2] { x |> ActNorm |> Linear(2) }
          loss l = mse(f(x), x)
          train { minimize l; batch 8; steps 2 }
        }
        """, "E304", 3)
    assert "flow" in d.hint


def test_nll_of_an_observation_without_latents_is_exact():
    """With no latent, p(x) is the observed distribution itself: its log_prob is exact, and its
    draws are n samples of one distribution shared by the batch."""
    text = """\
        model M {
          data x: real[2] from ring(n=64)
          tensor mu: real[2] = constant(0.5)
          observe x ~ Normal(mu, 2)
          loss nll = -log p(x)
          train { minimize nll; batch 8; steps 2 }
          sample x ~ p(x)
          evaluate { nll }
        }
        """
    model = compiled(accepted(text), text)
    x = torch.randn(5, 2)
    expected = torch.distributions.Normal(torch.full((2,), 0.5), 2.0).log_prob(x).sum(1)
    assert torch.allclose(model.log_prob({"x": x}), expected)
    assert model.sample_x(7).shape == (7, 2)
    assert torch.equal(model.sample_x(3, mean=True), torch.full((3, 2), 0.5))


def test_coverage_needs_a_sample_of_the_variable_with_known_modes():
    text = """\
        model M {
          data img: real[64], y: cat[10] from digits()
          data b: real[2] from grid(n=40, side=1)
          latent z: real[4] ~ Normal(0, 1)
          generator G(z) -> real[64] { z |> Linear(64) }
          loss l = mse(G(z), img) + mean(b)
          train { minimize l; batch 8; steps 2 }
          sample img = G(z)
          evaluate { coverage(samples=40) }
        }
        """
    refused(text, "E312", 9)
    accepted(text.replace("generator G(z) -> real[64] { z |> Linear(64) }",
                          "generator G(z) -> real[64] { z |> Linear(64) }\n  net H(z) -> real[2] { z |> Linear(2) }")
             .replace("+ mean(b)", "+ mse(H(z), b)").replace("sample img = G(z)", "sample b = H(z)"))


def test_a_network_that_detaches_its_input_passes_no_gradient_back():
    """g_loss reaches G only through C, whose body detaches its input: no gradient reaches G."""
    refused("""\
        model M {
          data x: real[2] from ring(n=64)
          latent z: real[2] ~ Normal(0, 1)
          generator G(z) -> real[2] { z |> Linear(2) }
          critic C(x) -> real[1] { detach(x |> Linear(4)) |> Linear(1) }
          loss d_loss = mean(C(G(z))) - mean(C(x)) + 10 * gradient_penalty(C, x, G(z))
          loss g_loss = -mean(C(G(z)))
          train { step c: minimize d_loss over C; step g: minimize g_loss over G; batch 8; steps 2 }
          sample x = G(z)
        }
        """, "E316", 8)


def test_batch_norm_needs_two_samples_per_batch():
    refused("""\
        model M {
          data x: real[2] from ring(n=64)
          net f(x) -> real[2] { x |> Linear(4) |> BatchNorm |> Linear(2) }
          loss l = mse(f(x), x)
          train { minimize l; batch 1; steps 2 }
        }
        """, "E220", 3)


def test_langevin_on_an_energy_that_detaches_its_input_is_refused():
    refused("""\
        model M {
          data x: real[2] from ring(n=64)
          energy E(x) -> real { detach(x) |> Linear(1) }
          sampler neg = Langevin(E, steps=2, step_size=0.01)
          loss cd = mean(E(x)) - mean(E(neg))
          train { minimize cd; batch 8; steps 2 }
        }
        """, "E311", 4)


def test_batch_norm_on_summed_out_labels_is_refused():
    refused("""\
        model M {
          data x: real[2] from ring(n=64)
          tensor logits: real[3] = zeros
          latent c: cat[3] ~ Categorical(logits = logits)
          net m(c: cat[3]) -> real[2] { onehot(c) |> BatchNorm |> Linear(2) }
          observe x ~ Normal(m(c), 0.5)
          loss nll = -log p(x)
          train { minimize nll; batch 8; steps 2 }
        }
        """, "E220", 5)


@pytest.mark.parametrize("optimizer", ["AdamW(betas=(-0.5, 0.9))", "Adam(weight_decay=-0.5)", "SGD(lr=0)",
                                       "RMSprop(alpha=2)"])
def test_optimizer_options_out_of_range_are_refused(optimizer):
    refused(f"""\
        model M {{
          data x: real[2] from ring(n=64)
          net f(x) -> real[2] {{ x |> Linear(2) }}
          loss l = mse(f(x), x)
          train {{ minimize l with {optimizer}; batch 8; steps 2 }}
        }}
        """, "E221", 5)
