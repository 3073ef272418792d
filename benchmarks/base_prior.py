"""A base judged before any RL: its card (nsr.base_card) and its exact prior per question type (nsr.base_prior).

    python benchmarks/base_prior.py --base results/models/base
    python benchmarks/base_prior.py --workdir /tmp/prior --num-threads 2 \\
        --set 'base.warmstart.phases=[{steps: 2000, teacher_accuracy: 1.0},
               {steps: 300, learning_rate: 3.0e-4, teacher_accuracy: 0.6, teacher_difficulty: gap}]'

With --base, measures that folder; else builds the base of config/config.yaml with the overrides
(``--set dotted.key=YAML value``, repeatable) in WORKDIR/base (reused when there: delete it to rebuild).
The test problems are the study's (data.dataset, data.test_size, data.seed, data.options with the
overrides; --test-size to change their number). The card's samples are drawn as the study draws the
base's: one file per training seed (train.seeds; --seeds to change them), the config's sampling block
(--samples to change n), kept in WORKDIR/samples (next to --base: base_prior/samples) and reused. Prints
the card (with the targets of a paper-like base) and the exact prior; writes WORKDIR/base_card.csv / .md
and WORKDIR/base_prior.csv.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nsr.base import prepare_study_base
from nsr.base_card import markdown as card_markdown, write_card
from nsr.base_prior import markdown, per_problem, sample_card, summarize
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
                        help="config override, e.g. base.warmstart.steps=3000 or data.options.max_categories=9")
    parser.add_argument("--test-size", type=int, default=None, help="test problems (default data.test_size)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="sampling seeds (default train.seeds)")
    parser.add_argument("--samples", type=int, default=None, help="samples per problem and seed (default "
                                                                  "sampling.num_samples)")
    parser.add_argument("--num-threads", type=int, default=None)
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
        out = args.workdir or args.base.parent / "base_prior"
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
        sampling = {**config["sampling"], **({"num_samples": args.samples} if args.samples else {})}
        card = sample_card(base, problems, out / "test.parquet", out / "samples", args.seeds or config["train"]["seeds"],
                           sampling, data.get("test_name", "test"), num_threads=args.num_threads)
        prior = summarize(per_problem(base, problems, parse_options(**options)["value_range"],
                                      num_threads=args.num_threads))
    except InputError as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    write_card(card, out / "base_card.csv")
    prior.to_csv(out / "base_prior.csv", index=False)
    print(card_markdown(card))
    print("Exact prior (teacher-forced p of the right answer + EOS):\n")
    print(markdown(prior))
    print(f"\nbase {base} (built in {built:.0f} s), {len(problems)} test problems; measured in "
          f"{time.perf_counter() - started - built:.0f} s; wrote {out / 'base_card.csv'} (.md) and {out / 'base_prior.csv'}")


if __name__ == "__main__":
    main()
