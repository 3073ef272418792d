"""`nsr forms --set NAME PROBLEMS SAMPLES... [--set ...] --output answer_forms.png`: the answer
forms of a study's samples (counted by nsr.forms, drawn by nsr.plotting), written as the figure
plus ``.csv`` (one row per test set, method and question type) and ``.md`` next to it."""

from __future__ import annotations

import argparse

from nsr.cli import add_test_set_flags, test_set_groups
from nsr.forms import answer_forms, markdown_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_test_set_flags(parser, ["PROBLEMS"], "its problems parquet, then its samples files (method = a file's folder name)")


def run(args: argparse.Namespace) -> None:
    from nsr.plotting import answer_forms_figure, write_figure_and_tables  # seaborn: only when drawing

    table = answer_forms(test_set_groups(args.sets, ["PROBLEMS"]))
    write_figure_and_tables(answer_forms_figure(table), table, markdown_table(table), args.output)
    print(markdown_table(table))
