"""`nsr plot`: the comparison figure and tables from pass_at_k JSON files, the training-dynamics
figure from train logs."""

from __future__ import annotations

import argparse

from nsr.io import InputError
from nsr.plotting.common import save_figure
from nsr.plotting.comparison import load_results, markdown_table, write_comparison
from nsr.plotting.dynamics import dynamics_figure, load_train_logs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", nargs="+", default=[],
                        help="pass_at_k JSON files, one per (test set, method); panels in file order")
    parser.add_argument("--labels", nargs="+", default=None,
                        help="legend labels, one per --results file: by position, except that labels naming "
                             "the files' methods (case aside) go to the file of that method")
    parser.add_argument("--output", default=None,
                        help="comparison PNG; the .csv and .md tables are written next to it")
    parser.add_argument("--base-method", default="base", help="method drawn dashed (default: base)")
    parser.add_argument("--title", default=None, help="comparison figure title")
    parser.add_argument("--train-logs", nargs="+", default=[], help="train_log.csv files (several seeds allowed)")
    parser.add_argument("--labels-train", nargs="+", default=None, help="method of each --train-logs file")
    parser.add_argument("--dynamics-output", default=None, help="training-dynamics PNG")
    parser.add_argument("--smooth-window", type=int, default=None, help="rolling-mean window in steps")


def run(args: argparse.Namespace) -> None:
    if not args.results and not args.train_logs:
        raise InputError("give --results (comparison) and/or --train-logs (training dynamics)")
    if args.results and not args.output:
        raise InputError("--output is required with --results")
    if args.train_logs and not args.dynamics_output:
        raise InputError("--dynamics-output is required with --train-logs")
    if args.smooth_window is not None and args.smooth_window < 1:
        raise InputError(f"--smooth-window must be >= 1, got {args.smooth_window}")
    # validate every input before drawing anything
    table = load_results(args.results, args.labels, args.base_method) if args.results else None
    logs = load_train_logs(args.train_logs, args.labels_train) if args.train_logs else None
    if table is not None:
        write_comparison(table, args.output, args.base_method, args.title)
        print(markdown_table(table), end="")
        print(f"wrote {args.output} (+ .csv, .md)")
    if logs is not None:
        save_figure(dynamics_figure(logs, args.smooth_window), args.dynamics_output)
        print(f"wrote {args.dynamics_output}")
