"""The diagrams as a paper would draw them: calls between networks as edges, the training steps in a
schedule panel (no edge back into the graph), math labels, and the pgm view's theta and phi."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gendsl.diagram.draw import compute_view, pgm_view
from gendsl.diagram.mathtext import PHI, THETA, Formula, label, loss_sym, sym
from gendsl.graph.check import check_source
from gendsl.source import SourceFile

ROOT = Path(__file__).parents[2]


def graph_of(path: str):
    file = ROOT / path
    checked = check_source(SourceFile(str(file), file.read_text(encoding="utf-8")))
    assert checked.ok, [d.message for d in checked.diagnostics]
    return checked.graph


def edges(source: str) -> list[tuple[str, str, str]]:
    """(tail, head, attributes) of every edge in DOT text."""
    return re.findall(r"^\s*(\S+) -> (\S+)(?: \[(.*)\])?$", source, re.M)


def test_symbols_italic_with_subscripts_and_greek() -> None:
    assert sym("z1") == "<I>z</I><SUB>1</SUB>"
    assert sym("G_ab") == "<I>G</I><SUB>ab</SUB>"
    assert sym("beta") == "<I>\u03b2</I>"
    assert sym("log_sigma") == "log <I>\u03c3</I>"
    assert sym("body") == "body"            # a word stays upright
    assert sym("l1_weight") == "l1_weight"
    assert loss_sym("d_loss") == "\u2112<SUB>d</SUB>"


def test_formula_densities_kl_and_wrapping() -> None:
    math = Formula({"q(z|x)": PHI, "p(x|z)": THETA}, networks=set(), density_names={"p", "q"})
    shown = math.html("-log p(x | z) + beta * kl(q(z | x), p(z))")
    assert shown.startswith("\u2212log <I>p</I><SUB>\u03b8</SUB>(<I>x</I> | <I>z</I>)")
    assert f"KL(<I>q</I><SUB>{PHI}</SUB>(<I>z</I> | <I>x</I>) \u2016 <I>p</I>(<I>z</I>))" in shown
    assert "<I>\u03b2</I> \u00b7 KL" in shown
    long = " + ".join(f"mse(a{i}, b{i})" for i in range(8))   # terms 11 wide, 14 with their ' + '
    lines = Formula({}, set(), set()).lines(long, 45)
    assert [line.count("mse") for line in lines] == [3, 3, 2]
    assert lines[1].startswith("\u2003\u2003+ mse")          # later lines indented, led by the operator


def test_label_hides_closing_brackets_from_graphviz() -> None:
    assert label("<I>c</I>]") == "<<I>c</I>&#93;>"


def test_network_calling_a_network_is_an_edge() -> None:
    found = edges(compute_view(graph_of("tests/specs/infogan_like.gen")).source)
    calls = {(tail, head) for tail, head, attrs in found if "#2f5fa0" in attrs}
    assert calls == {("n_body", "n_D"), ("n_body", "n_Q")}


def test_cycle_losses_chain_the_generators() -> None:
    found = {(tail, head) for tail, head, _ in edges(compute_view(graph_of("specs/cyclegan.gen")).source)}
    assert {("n_G_ab", "n_G_ba"), ("n_G_ba", "n_G_ab")} <= found


@pytest.mark.parametrize("spec", ["specs/cyclegan.gen", "specs/gan_ring.gen", "specs/hvae.gen"])
def test_steps_are_a_schedule_panel_not_edges_into_the_graph(spec: str) -> None:
    graph = graph_of(spec)
    source = compute_view(graph).source
    found = edges(source)
    assert not [e for e in found if e[0].startswith("schedule")], "nothing leaves the schedule panel"
    steps = [k for k, d in graph.nodes(data=True) if d["data"].kind == "step"]
    into_panel = {head for tail, head, _ in found if head.startswith("schedule:")}
    assert len(into_panel) == len(steps) >= 1
    assert "updates" not in source


def test_minimized_losses_stand_in_the_order_of_their_steps() -> None:
    """cyclegan's critic step (d_loss) comes first: its loss is placed above g_loss, in one column,
    so the two dashed edges into the schedule's rows do not cross."""
    source = compute_view(graph_of("specs/cyclegan.gen")).source
    column = re.search(r"\{\s*rank=same\s*(.*?)\}", source, re.S)
    assert column and edges(column.group(1)) == [("l_d_loss", "l_g_loss", "style=invis")]
    # one minimized loss needs no column
    assert "rank=same" not in compute_view(graph_of("specs/vqvae.gen")).source


def test_schedule_names_losses_and_targets_in_math() -> None:
    source = compute_view(graph_of("specs/cyclegan.gen")).source
    assert "1. critic: min \u2112<SUB>d</SUB> over <I>D</I><SUB>a</SUB>, <I>D</I><SUB>b</SUB>" in source
    vae = compute_view(graph_of("specs/vae.gen")).source
    assert f"min elbo over <I>{THETA}</I>, <I>{PHI}</I>" in vae or f"over <I>{PHI}</I>, <I>{THETA}</I>" in vae


def test_network_titles_and_bodies_use_math() -> None:
    source = compute_view(graph_of("specs/vae.gen")).source
    assert f"encoder <I>q</I><SUB>{PHI}</SUB>(<I>z</I> | <I>x</I>)" in source
    assert f"decoder <I>p</I><SUB>{THETA}</SUB>(<I>x</I> | <I>z</I>)" in source
    assert "|&gt;" not in source and "|>" not in source      # no pipeline syntax left
    assert "<I>\u03bc</I> = <I>f</I><SUB>2</SUB>(<I>h</I>)" in source
    cyclegan = compute_view(graph_of("specs/cyclegan.gen")).source
    assert "<I>G</I><SUB>ab</SUB>(<I>a</I>) = <I>a</I> + <I>f</I>(<I>a</I>)" in cyclegan


def test_pgm_draws_theta_and_phi_as_kingma_and_welling() -> None:
    source = pgm_view(graph_of("specs/vae.gen")).source
    found = {(tail, head): attrs for tail, head, attrs in edges(source)}
    assert "dashed" in found[("w_phi", "v_z")]              # variational parameters, dashed
    assert "dashed" not in found[("w_theta", "v_x")]        # generative parameters, solid
    assert "dashed" in found[("v_x", "v_z")] and "dashed" not in found[("v_z", "v_x")]
    assert ("w_theta", "v_z") not in found                  # the prior Normal(0, 1) has no parameters
    plate = source[source.index("subgraph cluster_plate"):source.index("}", source.index("subgraph cluster_plate"))]
    assert "v_x" in plate and "filled" in plate and "w_theta" not in plate
    hvae = {(t, h) for t, h, _ in edges(pgm_view(graph_of("specs/hvae.gen")).source)}
    assert {("w_theta", "v_z1"), ("w_phi", "v_z1"), ("w_phi", "v_z2")} <= hvae


def test_gan_pgm_puts_theta_on_the_generated_variable() -> None:
    found = {(t, h) for t, h, _ in edges(pgm_view(graph_of("specs/cgan.gen")).source)}
    assert {("v_z", "v_x"), ("v_y", "v_x"), ("w_theta", "v_x")} <= found
    assert not [e for e in found if e[0] == "w_phi"]
