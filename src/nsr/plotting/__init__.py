"""Seaborn figures and tables of the study; the `nsr plot` command.

* Comparison: Pass@k against k (log2 axis), one panel per test set, one line per method with
  its 95% CI band, the base model dashed. Tables next to the PNG (same stem):
  - ``.csv`` in long format, one row per (test_set, method, k): test_set, method, k, pass_at_k,
    ci_low, ci_high, and std / num_seeds when the JSON aggregates several seeds (empty otherwise);
  - ``.md``: per test set, methods as rows, Pass@1/8/64/256 as columns, "value [CI low, CI high]"
    in percent.
* Training dynamics: reward, fraction correct and token entropy per step, one smoothed line
  per method (the mean over its seeds) over the faint raw values; with held-out evaluation
  logged, a second row: Pass@1, Pass@k, malformed share, entropy and greedy accuracy from step 0
  (the base) on, mean over seeds with a +-1 std band.

Figures are built on ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state), so they can be
returned, inspected in tests and saved from any thread.

    common.py        method_palette (one colour per method in every figure), save_figure,
                     write_figure_and_tables (also used by nsr.coverage and nsr.forms_cli)
    comparison.py    load_results (with add_paired_differences), comparison_figure, markdown_table,
                     write_comparison
    dynamics.py      load_train_logs, smooth, dynamics_figure
    answer_forms.py  answer_forms_figure (counted by nsr.forms; imports run one way:
                     forms_cli -> plotting -> forms)
    answer_distributions.py  answer_distributions_figure, shown_problems (counted by
                     nsr.answer_distributions; imports: answer_distributions_cli -> plotting -> it)
    cli.py           `nsr plot`
"""

from nsr.plotting.answer_distributions import CATEGORY_COLORS, answer_distributions_figure, shown_problems
from nsr.plotting.answer_forms import FORM_COLORS, FORM_LABELS, answer_forms_figure
from nsr.plotting.cli import add_arguments, run
from nsr.plotting.common import KNOWN_METHODS, method_palette, save_figure, write_figure_and_tables
from nsr.plotting.comparison import (TABLE_KS, add_paired_differences, comparison_figure, load_results,
                                     markdown_table, write_comparison)
from nsr.plotting.dynamics import (DYNAMICS_PANELS, EVAL_PANELS, SHARE_COLUMNS, TRAIN_LOG_COLUMNS, dynamics_figure,
                                   load_train_logs, smooth)

__all__ = ["CATEGORY_COLORS", "DYNAMICS_PANELS", "EVAL_PANELS", "FORM_COLORS", "FORM_LABELS", "KNOWN_METHODS",
           "SHARE_COLUMNS", "TABLE_KS", "TRAIN_LOG_COLUMNS", "add_arguments", "add_paired_differences",
           "answer_distributions_figure", "answer_forms_figure", "shown_problems",
           "comparison_figure", "dynamics_figure", "load_results", "load_train_logs", "markdown_table",
           "method_palette", "run", "save_figure", "smooth", "write_comparison", "write_figure_and_tables"]
