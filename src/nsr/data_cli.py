"""`nsr subset`: seeded train/test problem sets as parquet."""

from __future__ import annotations

import argparse

from nsr.data import write_subset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset-name", default="synthchart", help="task name or .parquet file")
    parser.add_argument("--split", required=True, help="warmstart | train | test")
    parser.add_argument("--subset-size", type=int, default=None, help="number of problems (default: all)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--output", required=True, help="output .parquet")


def run(args: argparse.Namespace) -> None:
    frame = write_subset(args.dataset_name, args.split, args.subset_size, args.seed, args.output)
    print(f"wrote {len(frame)} {args.split} problems to {args.output}")
