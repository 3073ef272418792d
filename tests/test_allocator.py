"""nsr.allocator: with its malloc settings, tensors of varying size reuse freed memory instead of
faulting in fresh pages (what cost the embedded study 9% of its CPU)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nsr.allocator import GLIBC_VARIABLES, keep_freed_memory

# Activations of one step: three 4-6 MiB blocks held together, then freed, step after step. glibc's
# own thresholds adapt to the block size, but trim the freed heap top (three blocks > twice one)
# after every step, so each step faults its pages in again; the settings keep them. Measured after
# a warm-up, so only the steady state counts.
CHURN = """
import resource, sys, torch
from nsr.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "on" else False
def steps(n):
    for i in range(n):
        held = [torch.ones((1 << 18) * (4 + (i + j) % 3)) for j in range(3)]
        del held
steps(3)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
steps(50)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in GLIBC_VARIABLES}
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, env=env, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_freed_tensor_memory_is_reused_instead_of_faulted_in_again():
    applied, with_settings = page_faults("on")
    _, without = page_faults("off")
    assert applied == "True"
    assert with_settings * 5 < without, (with_settings, without)


def test_the_users_own_glibc_settings_win():
    assert keep_freed_memory({"MALLOC_MMAP_THRESHOLD_": "65536"}) is False
    assert keep_freed_memory({"MALLOC_TRIM_THRESHOLD_": "0"}) is False
