"""nsr.allocator: with its malloc settings, tensors of varying size reuse freed memory instead of
faulting in fresh pages (what cost the embedded study 9% of its CPU)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nsr.allocator import GLIBC_VARIABLES, keep_freed_memory

# Activations of one step: three 4-6 MiB blocks held together, then freed, step after step,
# measured after a warm-up (the steady state). "start" fixes glibc's thresholds at their initial
# 128 KiB: every block is mapped fresh and unmapped on free, as before glibc's heuristic adapts;
# the heuristic itself adapts or not depending on where small allocations land, so it is no
# stable reference.
CHURN = """
import ctypes, resource, sys, torch
from nsr.allocator import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, keep_freed_memory
if sys.argv[1] == "on":
    applied = keep_freed_memory()
else:
    mallopt = ctypes.CDLL(None).mallopt
    applied = bool(mallopt(M_MMAP_THRESHOLD, 128 << 10)) and bool(mallopt(M_TRIM_THRESHOLD, 128 << 10))
def steps(n):
    for i in range(n):
        held = [torch.ones((1 << 18) * (4 + (i + j) % 3)) for j in range(3)]
        del held
steps(20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
steps(50)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES_TOUCHED = 50 * 15 * (1 << 20) // 4096  # 50 steps of 4 + 5 + 6 MiB


def transparent_huge_pages_always() -> bool:
    path = "/sys/kernel/mm/transparent_hugepage/enabled"
    return os.path.exists(path) and "[always]" in open(path).read()


def page_faults(mode: str) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in GLIBC_VARIABLES}
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, env=env, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
@pytest.mark.skipif(transparent_huge_pages_always(), reason="huge pages: a fault maps 2 MiB, counts do not track bytes")
def test_freed_tensor_memory_is_reused_instead_of_faulted_in_again():
    applied, with_settings = page_faults("on")
    applied_start, at_start = page_faults("start")
    assert applied == applied_start == "True"
    assert at_start > PAGES_TOUCHED // 2, (at_start, PAGES_TOUCHED)  # the measure sees fresh pages
    assert with_settings < PAGES_TOUCHED // 20, (with_settings, at_start)


def test_the_users_own_glibc_settings_win():
    assert keep_freed_memory({"MALLOC_MMAP_THRESHOLD_": "65536"}) is False
    assert keep_freed_memory({"MALLOC_TRIM_THRESHOLD_": "0"}) is False
