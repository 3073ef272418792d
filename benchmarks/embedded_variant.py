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
import subprocess
import sys
import time
from pathlib import Path

import yaml

from nsr.io import InputError
from nsr.paper_shape import ROLES
from nsr.screen import REPO, parse_assignment, snakemake, study_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. base.warmstart.teacher_accuracy=0.5 or 'train.seeds=[1,2,3]'")
    parser.add_argument("--methods", nargs="+", default=None, help="run only these methods of the config")
    parser.add_argument("--cores", default="all")
    args = parser.parse_args()
    try:
        config = study_config([parse_assignment(a) for a in args.set], methods=args.methods)
    except InputError as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    args.workdir.mkdir(parents=True, exist_ok=True)
    config_path = args.workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.monotonic()
    result = snakemake(config_path, args.workdir, args.cores, "-q", capture=False)
    if result.returncode != 0:
        sys.exit(result.returncode)
    print(f"study variant: {time.monotonic() - started:.0f} s wall\n")
    print((args.workdir / "results" / "comparison_pass_at_k.md").read_text())
    if set(ROLES) <= set(config["methods"]):
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "paper_shape.py"),
                        "--results", str(args.workdir / "results")])


if __name__ == "__main__":
    main()
