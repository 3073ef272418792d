"""`nsr forms --set NAME PROBLEMS SAMPLES... [--set ...] --output answer_forms.png`: the answer
forms of a study's samples (counted by nsr.forms, drawn by nsr.plotting), written as the figure
plus ``.csv`` (one row per test set, method and question type) and ``.md`` next to it."""

from __future__ import annotations

import argparse
from pathlib import Path

from nsr.forms import answer_forms, markdown_table
from nsr.io import InputError, atomic_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="sets", action="append", nargs="+", required=True,
                        metavar="NAME PROBLEMS SAMPLES",
                        help="a test set: its name, its problems parquet, then its samples files "
                             "(method = a file's folder name); repeat for several test sets")
    parser.add_argument("--output", required=True, help="figure (.png); the .csv and .md tables go next to it")


def run(args: argparse.Namespace) -> None:
    from nsr.plotting import answer_forms_figure, save_figure  # seaborn: only when drawing

    sets = []
    for spec in args.sets:
        if len(spec) < 3:
            raise InputError(f"--set {' '.join(spec)}: give NAME PROBLEMS SAMPLES [SAMPLES ...]")
        sets.append((spec[0], spec[1], spec[2:]))
    table = answer_forms(sets)
    output = Path(args.output)
    with atomic_path(output.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(output.with_suffix(".md")) as tmp:
        tmp.write_text(markdown_table(table))
    save_figure(answer_forms_figure(table), output)
    print(markdown_table(table))
