"""nsr.allocator: with its malloc settings, tensors of varying size reuse freed memory instead of
faulting in fresh pages (what cost the embedded study 9% of its CPU)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nsr.allocator import GLIBC_VARIABLES, keep_freed_memory

# Activations of varying batch shapes: 1-7 MiB and 0.25-1.25 MiB blocks, allocated and freed in turn.
CHURN = """
import resource, sys, torch
from nsr.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "on" else False
torch.ones(1 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(300):
    a = torch.ones((1 << 18) * (1 + i % 7))
    b = torch.ones((1 << 16) * (1 + i % 5))
    del a, b
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
    assert with_settings * 3 < without, (with_settings, without)


def test_the_users_own_glibc_settings_win():
    assert keep_freed_memory({"MALLOC_MMAP_THRESHOLD_": "65536"}) is False
    assert keep_freed_memory({"MALLOC_TRIM_THRESHOLD_": "0"}) is False
