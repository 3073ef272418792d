"""`nsr answers --set NAME PROBLEMS SAMPLES... [--set ...] --base base --output answer_distributions.png`:
per fragile (and easy) problem each method's answer shares next to the base's (counted by
nsr.answer_distributions, drawn by nsr.plotting), written as the figure plus the ``.csv`` (one row
per test set, problem, method and category) next to it."""

from __future__ import annotations

import argparse

from nsr.answer_distributions import answer_distributions
from nsr.cli import add_test_set_flags, test_set_groups
from nsr.coverage import BASE_METHOD


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_test_set_flags(parser, ["PROBLEMS"], "its problems parquet, then its samples files (method = a file's folder "
                       "name, seeds = its files, pooled)", tables=".csv table")
    parser.add_argument("--base", default=BASE_METHOD,
                        help=f"the method whose samples select the problems and name the wrong answers "
                             f"(default: {BASE_METHOD})")


def run(args: argparse.Namespace) -> None:
    from nsr.plotting import answer_distributions_figure, write_figure_and_tables  # seaborn: only when drawing

    groups = test_set_groups(args.sets, ["PROBLEMS"])
    table = answer_distributions(groups, args.base)
    write_figure_and_tables(answer_distributions_figure(table), table, None, args.output)
    problems = table.drop_duplicates(["test_set", "problem_id"])
    for name, *_ in groups:
        counts = problems.loc[problems["test_set"] == name, "selection"].value_counts()
        print(f"{name}: {counts.get('fragile', 0)} fragile and {counts.get('easy', 0)} easy problems")
    print(f"wrote {args.output} and its .csv")
