"""Run the embedded study with some settings changed: data, base, training seeds, any config key.

    python benchmarks/embedded_variant.py --workdir /tmp/seeds2 \\
        --set data.seed=7 --set base.seed=7 --set 'train.seeds=[11,12,13]' [--methods base psr nsr] [--cores 2]

Writes config/config.yaml with the overrides (``--set dotted.key=YAML value``, repeatable) to
WORKDIR/config.yaml, runs the whole default target there (`snakemake --cores N --configfile ...
--directory WORKDIR`), then prints WORKDIR/results/comparison_pass_at_k.md and the paper-shape
check of benchmarks/paper_shape.py (S1-S5) when all five methods ran. Nothing outside WORKDIR is
touched. The study's own checks run on the result, so a misspelled key stops before any job.
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


def apply_override(config: dict, assignment: str) -> None:
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise SystemExit(f"--set {assignment!r}: expected dotted.key=value")
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = yaml.safe_load(value)


def variant_config(args: argparse.Namespace) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for assignment in args.set:
        apply_override(config, assignment)
    if args.methods:
        unknown = sorted(set(args.methods) - set(config["methods"]))
        if unknown:
            raise SystemExit(f"--methods: {unknown} not in the config's methods {list(config['methods'])}")
        config["methods"] = {m: config["methods"][m] for m in args.methods}
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. base.warmstart.teacher_accuracy=0.5 or 'train.seeds=[1,2,3]'")
    parser.add_argument("--methods", nargs="+", default=None, help="run only these methods of the config")
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
    methods = yaml.safe_load(config_path.read_text())["methods"]
    if {"base", "grpo", "psr", "nsr", "w-reinforce"} <= set(methods):
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "paper_shape.py"),
                        "--results", str(args.workdir / "results")], env=env)


if __name__ == "__main__":
    main()
