"""`nsr subset`: seeded train/test problem sets as parquet."""

from __future__ import annotations

import argparse

from nsr.data import write_subset
from nsr.io import InputError


def parse_options(pairs: list[str]) -> dict[str, str]:
    """`key=value` task options (values stay strings; each task adapter parses its own)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--option {pair!r}: expected key=value")
        options[key] = value
    return options


def add_option_argument(parser: argparse.ArgumentParser, what: str = "task adapter option") -> None:
    """`--option KEY=VALUE` (repeatable), as every command that reads a task takes it."""
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help=f"{what} (repeatable), e.g. --option hub_id=ORG/NAME, --option credit=graded")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset-name", default="synthchart", help="task name or .parquet file")
    parser.add_argument("--split", required=True, help="warmstart | train | test")
    parser.add_argument("--subset-size", type=int, default=None, help="number of problems (default: all)")
    parser.add_argument("--seed", type=int, default=2025)
    add_option_argument(parser)
    parser.add_argument("--exclude", nargs="+", default=[], metavar="PARQUET",
                        help="problem files whose problems this subset must not contain (the test set "
                             "leaves out the training subset; a parquet pool draws from the rest)")
    parser.add_argument("--output", required=True, help="output .parquet")


def run(args: argparse.Namespace) -> None:
    options = parse_options(args.option)
    frame = write_subset(args.dataset_name, args.split, args.subset_size, args.seed, args.output,
                         exclude=tuple(args.exclude), **options)
    print(f"wrote {len(frame)} {args.split} problems to {args.output}")
