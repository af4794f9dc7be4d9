"""How `gendsl evaluate` prints a metric's values as text (the JSON carries the same dict)."""

from gendsl.commands import _format


def test_a_diffusion_bound_prints_its_three_terms() -> None:
    bound = {"nats": 92.7, "bpd": 2.09, "stderr": 0.5, "method": "variational bound",
             "terms": {"L_0": 12.37, "L_1..L_T-1": 80.36, "L_T": 0.0}}
    lines = _format(bound).splitlines()
    assert lines[0] == "92.700 nats (+/- 0.500), 2.0900 bits/dim [variational bound]"
    assert lines[1].strip() == "terms (nats): L_0 12.37, L_1..L_T-1 80.36, L_T 0"


def test_a_sample_metric_prints_its_real_vs_real_reference() -> None:
    assert _format({"fid": 1.4712, "real_vs_real_fid": 0.13}) == "fid 1.471 (real vs real 0.13)"
