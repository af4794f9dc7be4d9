"""Issue 10, reproducer 4: an entry added without its implementation is caught by name.

Each test adds a scratch entry to a registry (removed afterwards), as a developer would when
forgetting the implementation, and shows that the conformance test of that registry fails for
it, and that the code generator refuses a helper that does not exist instead of dropping it."""

from __future__ import annotations

import pytest

from gendsl.codegen.emit import helper_sources
from gendsl.library.entries import Built, Code, Entry, features
from gendsl.library.layers import LAYERS
from gendsl.library.training import INITS, OPTIMIZERS, SCHEDULES
from gendsl.types import TensorType
from tests.conformance import test_registries as conformance


def add(monkeypatch, registry, name: str, rule, skip: int = 0) -> None:
    monkeypatch.setitem(registry, name, Entry(name=name, rule=rule, doc="scratch entry", skip=skip))


def test_an_unknown_helper_is_refused_not_dropped():
    with pytest.raises(LookupError, match="NoSuchHelper"):
        helper_sources({"NoSuchHelper", "bce"})


def test_initializer_without_implementation(monkeypatch, tmp_path):
    def xavier(gain: float = 1.0) -> Code:
        return Code("xavier_uniform({shape}, gain=%r)" % gain, ("xavier_uniform",))
    add(monkeypatch, INITS, "xavier", xavier)
    with pytest.raises(LookupError, match="xavier_uniform"):
        conformance.test_initializer("xavier", tmp_path)


def test_initializer_without_a_documented_check(monkeypatch, tmp_path):
    def eye() -> Code:
        return Code("torch.zeros({shape})")
    add(monkeypatch, INITS, "eye", eye)
    with pytest.raises(AssertionError, match="initializer eye has no reference check"):
        conformance.test_initializer("eye", tmp_path)


def test_schedule_that_would_train_at_a_constant_rate(monkeypatch, tmp_path):
    """The old failure: an `exponential` entry trained silently at a constant rate."""
    def exponential(gamma: float = 0.9) -> Code:
        return Code("torch.optim.lr_scheduler.LambdaLR({optimizer}, constant_lr({total}))", ("constant_lr",))
    add(monkeypatch, SCHEDULES, "exponential", exponential)
    with pytest.raises(AssertionError, match="schedule exponential has no reference trajectory"):
        conformance.test_schedule("exponential", tmp_path)


def test_optimizer_torch_does_not_have(monkeypatch, tmp_path):
    def lion(lr: float = 1e-4) -> Code:
        return Code(f"torch.optim.Lion({{params}}, lr={lr!r})")
    add(monkeypatch, OPTIMIZERS, "Lion", lion)
    with pytest.raises(AttributeError, match="Lion"):
        conformance.test_optimizer("Lion", tmp_path)


def test_layer_whose_code_names_an_undefined_class(monkeypatch, tmp_path):
    def swiglu(x: TensorType) -> Built:
        return Built(out=x.as_real(), code=f"SwiGLU({features(x, 'SwiGLU')})")
    add(monkeypatch, LAYERS, "SwiGLU", swiglu, skip=1)
    with pytest.raises(NameError, match="SwiGLU"):
        conformance.test_layer("SwiGLU", tmp_path)
