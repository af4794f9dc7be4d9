"""`cross_entropy(logits, y)`: the generated code equals -log softmax(logits)[y] (a label) and
-sum_k y_k log softmax(logits)_k (class probabilities), per sample, on random inputs; shared
logits (a tensor) are the same for every sample."""

from __future__ import annotations

import torch

from tests.conformance.pipeline import checks, compile_text


def test_against_labels_and_probabilities(tmp_path) -> None:
    text = """model C {
  net f(a: real[5], y: cat[5]) { cross_entropy(a, y) }
  net g(a: real[5], p: real[5]) { cross_entropy(a, p) }
  tensor t: real[5] = normal(std=1.0)
  net h(y: cat[5]) { cross_entropy(t, y) }
}
"""
    model = compile_text(text, tmp_path).model
    a, y = torch.randn(7, 5), torch.randint(5, (7,))
    p = torch.softmax(torch.randn(7, 5), -1)
    log_q = a - torch.logsumexp(a, -1, keepdim=True)
    torch.testing.assert_close(model.f(a, y), -log_q[torch.arange(7), y])
    torch.testing.assert_close(model.g(a, p), -(p * log_q).sum(-1))
    shared = model.t - torch.logsumexp(model.t, -1)
    torch.testing.assert_close(model.h(y, model.t), -shared[y])


def test_mismatched_classes_are_refused() -> None:
    found = checks("model C {\n  net f(a: real[4], y: cat[5]) { cross_entropy(a, y) }\n}\n").diagnostics
    assert [d.code for d in found if d.severity == "error"] == ["E220"], found
