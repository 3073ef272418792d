"""Does a model's bytes depend on the CPU code path? sha256 of the embedded base after a short
warm-start (and of a policy after a few `nsr train` steps from it) under several outer
environments, unpinned (NSR_CPU_CAPABILITY=native) and pinned (nsr.numerics), plus the seconds
per training step of each pin.

    python benchmarks/numerics_pinning.py --workdir /tmp/pinning [--warmstart-steps 30] [--train-steps 4]

Each case is a fresh process (the variables act only before torch dispatches its first kernel).
ATEN_CPU_CAPABILITY=avx512 in the outer environment is tried only where /proc/cpuinfo lists
avx512f (torch accepts the value on any CPU, and its kernels would stop with an illegal
instruction). Expected: the unpinned cases differ where the outer environment picks other
kernels; every pinned case has one digest whatever the outer environment and thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

NUMERIC_VARS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "NSR_CPU_CAPABILITY")


def cpu_has(flag: str) -> bool:
    try:
        return f" {flag} " in f" {Path('/proc/cpuinfo').read_text().replace(chr(10), ' ')} "
    except OSError:
        return False


def cases() -> list[tuple[str, str, dict, int]]:
    """(name, pin level, outer environment, threads)."""
    outer = ["default", "avx2"] + (["avx512"] if cpu_has("avx512f") else [])
    out = [(f"unpinned, outer ATEN_CPU_CAPABILITY={cap}", "native", {"ATEN_CPU_CAPABILITY": cap}, 1) for cap in outer]
    out.append(("unpinned, outer MKL_CBWR=COMPATIBLE", "native", {"MKL_CBWR": "COMPATIBLE"}, 1))
    out += [(f"pin avx2, outer ATEN_CPU_CAPABILITY={cap}", "avx2", {"ATEN_CPU_CAPABILITY": cap}, 1) for cap in outer]
    out.append(("pin avx2, outer MKL_CBWR=COMPATIBLE", "avx2", {"MKL_CBWR": "COMPATIBLE"}, 1))
    out.append(("pin avx2, 2 threads", "avx2", {}, 2))
    out.append(("pin default (no AVX)", "default", {}, 1))
    return out


def run_nsr(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nsr", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"nsr {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--warmstart-steps", type=int, default=30)
    parser.add_argument("--train-steps", type=int, default=4, help="nsr train steps at the default sizes (0: none)")
    args = parser.parse_args()
    work = Path(args.workdir)
    base_env = {k: v for k, v in os.environ.items() if k not in NUMERIC_VARS}
    base_env.update(HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="", TOKENIZERS_PARALLELISM="false")
    # The default study's data, built once (no torch numerics involved).
    data = work / "train.parquet"
    if not data.exists():
        run_nsr(["subset", "--dataset-name", "synthchart", "--split", "train", "--subset-size", "256", "--seed", "2025",
                 "--option", "max_categories=7", "--option", "value_range=10,99", "--option", "shuffle_labels=false",
                 "--output", str(data)], base_env)
    rows = []
    for i, (name, level, outer, threads) in enumerate(cases()):
        env = {**base_env, **outer, "NSR_CPU_CAPABILITY": level}
        base, policy = work / f"case{i}" / "base", work / f"case{i}" / "psr"
        base_seconds = run_nsr(["base", "--model", "embedded", "--seed", "2025", "--warmstart-steps",
                                str(args.warmstart_steps), "--option", "max_categories=7", "--option", "value_range=10,99",
                                "--option", "shuffle_labels=false", "--num-threads", str(threads),
                                "--output-dir", str(base)], env)
        row = {"case": name, "threads": threads, "base sha256": digest(base), "base s": round(base_seconds, 1)}
        if args.train_steps:
            run_nsr(["train", "--model", str(base), "--dataset-name", str(data), "--mode", "psr", "--seed", "2025",
                     "--max-steps", str(args.train_steps), "--prompts-per-step", "16", "--num-generations", "8",
                     "--max-completion-length", "16", "--learning-rate", "3e-5", "--num-threads", str(threads),
                     "--output-dir", str(policy)], env)
            log = pd.read_csv(policy / "train_log.csv")
            row.update({"trained sha256": digest(policy), "s/step": round(log["seconds"].iloc[-1] / len(log), 3)})
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
