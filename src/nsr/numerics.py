"""One CPU code path for every `nsr` command, so a model's bytes do not depend on the x86 CPU.

torch picks its CPU kernels at run time from the instructions the CPU has: ATen's vectorised
kernels (DEFAULT / AVX2 / AVX512 ...), MKL's BLAS code path and oneDNN's ISA. Two code paths
round differently (other vector widths, other summation orders, fused multiply-adds), and a
training run amplifies a last-bit difference into another trajectory: the same study on an
AVX-512 machine and an AVX2 one gives other checkpoints. Each library reads one environment
variable before it first dispatches, so `nsr` sets them first thing (nsr.cli.main, before any
torch import; subprocesses such as `nsr launch` / `nsr gpus` inherit them):

    ATEN_CPU_CAPABILITY   ATen's kernels
    MKL_CBWR              MKL's conditional numerical reproducibility: code path, STRICT
                          (bitwise results whatever the thread count, where MKL supports it)
    ONEDNN_MAX_CPU_ISA    oneDNN's highest instruction set

``NSR_CPU_CAPABILITY`` chooses the level (the workflow sets it from the config key
``numerics.cpu_capability``): ``avx2`` (default: every x86 CPU of the last decade has it, and
machines with AVX-512 then compute as AVX2 ones do), ``default`` (no AVX at all: the oldest
x86 path, slower), ``avx512`` (only machines that have it), or ``native`` (leave the variables as
they are: torch's own choice, fastest on each machine, not reproducible across machines).
The pin overrides the variables of the outer environment: that is what makes two machines, or
two shells, compute alike. It cannot act in a process that has imported torch already.
"""

from __future__ import annotations

import os
from typing import MutableMapping

ENV_KEY = "NSR_CPU_CAPABILITY"
DEFAULT_LEVEL = "avx2"
NATIVE = "native"
# Values each library accepts; torch accepts ATEN_CPU_CAPABILITY default / avx2 / avx512 on x86.
PINS = {
    "default": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE,STRICT", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AVX512,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
}
LEVELS = (*PINS, NATIVE)


def pin_cpu_numerics(environ: MutableMapping[str, str] = os.environ) -> str:
    """Sets the pin ``NSR_CPU_CAPABILITY`` asks for (default avx2) in ``environ``; returns the level.
    An unknown level is an error naming the variable: running unpinned by mistake would go unseen."""
    level = environ.get(ENV_KEY, DEFAULT_LEVEL).strip().lower() or DEFAULT_LEVEL
    if level not in LEVELS:
        from nsr.io import InputError

        raise InputError(f"{ENV_KEY}={environ[ENV_KEY]!r}: expected one of {', '.join(LEVELS)} "
                         "(config key numerics.cpu_capability)")
    environ[ENV_KEY] = level
    if level != NATIVE:
        environ.update(PINS[level])
    return level
