"""The trainer keeps freed host memory mapped: a round that reallocates the tensors it freed does not
fault their pages in again (gendsl/runtime/allocator.py)."""

import subprocess
import sys

import pytest

from gendsl.runtime import allocator

# Frees and reallocates what a training round does: tensors of 1 to 12 MiB, in a fresh process
# (the setting is process-wide and cannot be undone); prints the minor page faults per round.
# "hand_back": thresholds of glibc's initial 128 KiB, fixed, so that each freed block goes back to
# the kernel: the same rounds then fault, so the pattern is one that needs the setting. (glibc's
# default slides its thresholds as blocks are freed, and whether a round then faults depends on the
# heap's layout: about 7,400 faults per round in a shell here, none in a CI run.)
ROUNDS = """
import resource, sys, torch
from gendsl.runtime.allocator import keep_freed_memory, set_malloc_thresholds
if sys.argv[1] == "ours":
    assert keep_freed_memory()
else:
    assert set_malloc_thresholds(128 << 10, 128 << 10)
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
    ours, hand_back = faults_per_round("ours"), faults_per_round("hand_back")
    # fewer than the 256 pages of the smallest tensor: none of the tensors came back from the kernel
    # (0 faults in most runs here; 25.6 in two runs of eighteen, with two training processes running)
    assert ours < 256, f"{ours} faults per round with the setting (an allocation of 1 MiB alone is 256 pages)"
    assert hand_back > 5000, f"{hand_back} faults per round when freed memory goes back to the kernel"


def test_other_platforms_are_left_alone(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
