"""A base's prior per question type: exact Pass@1, chance, fragile and malformed shares (nsr.base_prior).

    python benchmarks/base_prior.py --base results/models/base [--set data.options.numeric_match=exact]
    python benchmarks/base_prior.py --workdir /tmp/prior --num-threads 1 \\
        --set 'base.warmstart.phases=[{steps: 6000, teacher_accuracy: 1.0},
               {steps: 600, learning_rate: 3.0e-4, teacher_accuracy: 0.6, blind_spot: last_unseen, blind_spot_escape: 0.02}]'

With --base, measures that folder; else builds the base of config/config.yaml with the overrides
(``--set dotted.key=YAML value``, repeatable) in WORKDIR/base (reused when there: delete it to
rebuild). The test problems are the study's (data.dataset, data.test_size, data.seed, data.options
with the overrides; --test-size to change their number). Prints a markdown table and writes it as
CSV (default WORKDIR/base_prior.csv, or base_prior.csv next to --base).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nsr.base import prepare_study_base
from nsr.base_prior import markdown, per_problem, summarize
from nsr.data import load_problems
from nsr.io import InputError
from nsr.screen import parse_assignment, study_config
from nsr.study_config import config_errors, report
from nsr.tasks.synthchart import parse_options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="a base folder to measure (else one is built in --workdir)")
    parser.add_argument("--workdir", type=Path, help="where the base is built (without --base)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. base.warmstart.steps=6000 or data.options.numeric_match=exact")
    parser.add_argument("--test-size", type=int, default=None, help="test problems (default data.test_size)")
    parser.add_argument("--samples", type=int, default=16, help="samples per problem for the malformed share")
    parser.add_argument("--num-threads", type=int, default=None)
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()
    if (args.base is None) == (args.workdir is None):
        parser.error("give either --base or --workdir")
    try:
        config = study_config([parse_assignment(a) for a in args.set])
        mistakes = config_errors(config)
        if mistakes:
            raise InputError(report(mistakes, "config/config.yaml + --set"))
        data = config["data"]
        if data["dataset"] != "synthchart":
            raise InputError(f"data.dataset: base_prior measures synthchart bases only, not {data['dataset']!r}")
        started = time.perf_counter()
        base = args.base
        if base is None:
            base = args.workdir / "base"
            if not base.exists():
                prepare_study_base(config, base, num_threads=args.num_threads)
        built = time.perf_counter() - started
        options = data.get("options") or {}
        problems = load_problems("synthchart", "test", args.test_size or data["test_size"], seed=data["seed"],
                                 **options)
        rows = per_problem(base, problems, parse_options(**options)["value_range"], num_samples=args.samples,
                           max_new_tokens=config["sampling"]["max_new_tokens"], num_threads=args.num_threads)
    except InputError as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    table = summarize(rows)
    out = args.csv or (args.workdir / "base_prior.csv" if args.workdir else base.parent / "base_prior.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(markdown(table))
    print(f"\nbase {base} (built in {built:.0f} s), {len(problems)} test problems, {args.samples} samples each; "
          f"measured in {time.perf_counter() - started - built:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
