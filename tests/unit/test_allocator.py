"""The trainer keeps freed host memory mapped: a round that reallocates the tensors it freed does not
fault their pages in again (gendsl/runtime/allocator.py)."""

import subprocess
import sys

import pytest

from gendsl.runtime import allocator

# Frees and reallocates what a training round does: tensors of 1 to 12 MiB, in a fresh process
# (the setting is process-wide and cannot be undone); prints the minor page faults per round.
ROUNDS = """
import resource, sys, torch
from gendsl.runtime.allocator import keep_freed_memory
if sys.argv[1] == "on":
    assert keep_freed_memory()
def round_():
    kept = [torch.ones(n << 18) for n in (2, 12, 8, 5, 1, 3)]  # n << 18 floats: n MiB
    del kept
for _ in range(5):
    round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    round_()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def faults_per_round(setting: str) -> float:
    out = subprocess.run([sys.executable, "-c", ROUNDS, setting], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_a_round_of_reallocations_faults_no_pages_in_again():
    on, off = faults_per_round("on"), faults_per_round("off")
    assert on < 10, f"{on} faults per round with the setting (an allocation of 1 MiB alone is 256 pages)"
    assert off > 100 * max(on, 1), f"without the setting: {off} faults per round against {on}"


def test_other_platforms_are_left_alone(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
