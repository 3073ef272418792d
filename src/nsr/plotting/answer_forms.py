"""nsr.plotting's answer-forms figure (the counts: nsr.forms; the `nsr forms` command: nsr.forms_cli)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from nsr.forms import ALL_TYPES, FORMS

FORM_COLORS = {"correct": "#2a9d8f", "wrong": "#e9c46a", "malformed": "#e76f51"}
FORM_LABELS = {"correct": "correct", "wrong": "well formed, wrong", "malformed": "malformed"}


def answer_forms_figure(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Stacked bars of the share of samples correct / well formed but wrong / malformed, one bar
    per method; rows are test sets, columns question types ("all" first); each bar is labelled
    with the mean number of distinct answers per problem (d=...). Input: nsr.forms.answer_forms."""
    test_sets = list(dict.fromkeys(table["test_set"]))
    types = [ALL_TYPES] + sorted(t for t in table["question_type"].unique() if t != ALL_TYPES)
    types = [t for t in types if t in set(table["question_type"])]
    methods = list(dict.fromkeys(table["method"]))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        fig = Figure(figsize=(3.2 * len(types) + 1, 0.45 * len(methods) * len(test_sets) + 1.6 * len(test_sets) + 0.6),
                     layout="constrained")
        axes = fig.subplots(len(test_sets), len(types), squeeze=False, sharex=True)
        for row, test_set in enumerate(test_sets):
            for col, qtype in enumerate(types):
                ax = axes[row][col]
                cells = (table[(table["test_set"] == test_set) & (table["question_type"] == qtype)]
                         .set_index("method").reindex(methods))
                left = np.zeros(len(methods))
                for form in FORMS:
                    shares = cells[form].fillna(0.0).to_numpy()
                    ax.barh(methods, shares, left=left, color=FORM_COLORS[form], label=FORM_LABELS[form],
                            edgecolor="white", linewidth=0.5)
                    left += shares
                for y, distinct in enumerate(cells["distinct_answers"]):
                    if pd.notna(distinct):
                        ax.text(0.98, y, f"d={distinct:.1f}", ha="right", va="center", fontsize=8, color="black")
                ax.invert_yaxis()
                ax.set_xlim(0, 1)
                ax.xaxis.set_major_formatter(PercentFormatter(1.0))
                ax.set_title(f"{test_set}: {qtype}" if len(test_sets) > 1 else qtype)
                if col:
                    ax.set_yticklabels([])
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(FORMS), frameon=False)
        fig.suptitle(title or "Answer forms of the samples (d = mean distinct answers per problem)")
    return fig
