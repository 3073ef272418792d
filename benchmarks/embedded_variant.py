"""Run the embedded study with a few settings changed: a quick probe of the task / base / RL knobs.

    python benchmarks/embedded_variant.py --workdir /tmp/ws520 --warmstart-steps 520 \\
        --seeds 2025 --methods base psr nsr [--learning-rate 3e-5] [--cores 2]

Writes config/config.yaml with the given overrides to WORKDIR/config.yaml, runs the whole DAG there
(`snakemake --cores N --configfile ... --directory WORKDIR`), then prints
WORKDIR/results/comparison_pass_at_k.md. Nothing outside WORKDIR is touched.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def variant_config(args: argparse.Namespace) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if args.warmstart_steps is not None:
        config["base"]["warmstart"]["steps"] = args.warmstart_steps
    if args.learning_rate is not None:
        config["train"]["learning_rate"] = args.learning_rate
    if args.max_steps is not None:
        config["train"]["max_steps"] = args.max_steps
    if args.seeds:
        config["train"]["seeds"] = args.seeds
    if args.methods:
        unknown = sorted(set(args.methods) - set(config["methods"]))
        if unknown:
            raise SystemExit(f"--methods: {unknown} not in config/config.yaml methods {list(config['methods'])}")
        config["methods"] = {m: config["methods"][m] for m in args.methods}
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--warmstart-steps", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--cores", default="all")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    config_path = args.workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(variant_config(args), sort_keys=False))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", str(args.cores),
                    "--configfile", str(config_path), "--directory", str(args.workdir), "-q"], check=True, env=env)
    print(f"study variant: {time.monotonic() - started:.0f} s wall\n")
    print((args.workdir / "results" / "comparison_pass_at_k.md").read_text())


if __name__ == "__main__":
    main()
