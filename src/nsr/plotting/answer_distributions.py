"""nsr.plotting's answer-distribution figure (the counts: nsr.answer_distributions; the `nsr answers`
command: nsr.answer_distributions_cli).

One small panel per shown problem: a stacked bar per method (the base on top) of its samples'
shares per category, so a reader sees where PSR and NSR moved the base's mass (right, the base's
own top wrong answers, other wrong answers, malformed). A test set's fragile problems can be
many; at most MAX_FRAGILE_PANELS of them are drawn (``shown_problems``: where the contrast
methods' right shares differ most), all of them stay in the CSV. The easy ones are always drawn,
on a grey background.
"""

from __future__ import annotations

import math
import textwrap

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from nsr.answer_distributions import CATEGORIES, TOP_WRONG
from nsr.plotting.answer_forms import FORM_COLORS

MAX_FRAGILE_PANELS = 12
# The paper's contrast: where PSR and NSR differ on a fragile problem's right answer. A study
# without both draws the problems where its methods' right shares spread most.
CONTRAST_METHODS = ("psr", "nsr")
PANEL_COLUMNS = 4
# right and malformed as in answer_forms.png; the base's wrong answers in three blues (darkest: its
# most frequent), any other wrong answer grey
CATEGORY_COLORS = {"right": FORM_COLORS["correct"], "base_wrong_1": "#274c77", "base_wrong_2": "#6096ba",
                   "base_wrong_3": "#a3cef1", "other_wrong": "#bdbdbd", "malformed": FORM_COLORS["malformed"]}
ORDINALS = ("1st", "2nd", "3rd")
CATEGORY_LABELS = {"right": "right answer", **{f"base_wrong_{i}": f"base's {ORDINALS[i - 1]} wrong answer"
                                                for i in range(1, TOP_WRONG + 1)},
                   "other_wrong": "other wrong answer", "malformed": "malformed"}


def contrast_methods(methods: list[str]) -> list[str]:
    """psr and nsr (in that order, names case aside) when ``methods`` has both, else all of them."""
    contrast = sorted((m for m in methods if m.lower() in CONTRAST_METHODS),
                      key=lambda m: CONTRAST_METHODS.index(m.lower()))
    return contrast if len(contrast) == len(CONTRAST_METHODS) else methods


def shown_problems(table: pd.DataFrame, cap: int = MAX_FRAGILE_PANELS) -> list[tuple[str, str]]:
    """(test_set, problem_id) of the panels, in table order: per test set at most ``cap`` fragile
    problems, those with the largest spread (max - min) of the right share among the
    contrast_methods, ties by base success then problem_id; then every easy problem."""
    contrast = contrast_methods(list(dict.fromkeys(table["method"])))
    right = table[(table["category"] == "right") & table["method"].isin(contrast)]
    shown = []
    for test_set, rows in table.groupby("test_set", sort=False):
        order = list(dict.fromkeys(rows["problem_id"]))
        fragile = rows[rows["selection"] == "fragile"].drop_duplicates("problem_id").set_index("problem_id")
        shares = right[right["test_set"] == test_set].groupby("problem_id")["share"]
        spread = shares.max() - shares.min()
        ranked = sorted(fragile.index, key=lambda pid: (-spread[pid], fragile.loc[pid, "base_success"], pid))[:cap]
        keep = set(ranked) | set(rows.loc[rows["selection"] == "easy", "problem_id"])
        shown += [(test_set, pid) for pid in order if pid in keep]
    return shown


def _short(text: str, width: int = 14) -> str:
    return textwrap.shorten(str(text), width=width, placeholder="…") or repr(text)


def _panel_title(block: pd.DataFrame, test_set: str | None) -> str:
    first = block.iloc[0]
    head = [f"{test_set}: {first['problem_id']}" if test_set else str(first["problem_id"])]
    if isinstance(first["question_type"], str) and first["question_type"]:
        head.append(first["question_type"])
    head.append(f"base {100 * first['base_success']:.1f}%")
    if first["selection"] == "easy":
        head.append("easy")
    wrong = [_short(a) for a in block.loc[block["category"].str.startswith("base_wrong"), "answer"].drop_duplicates()
             if isinstance(a, str) and a]
    return " · ".join(head) + f"\nright {_short(first['right_answer'])}" + (f"\nbase wrong {', '.join(wrong)}"
                                                                          if wrong else "")


def answer_distributions_figure(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Panels of shown_problems(table) in rows of PANEL_COLUMNS; in each a horizontal stacked bar of
    the CATEGORIES' shares per method, the base on top, the right share written beside the bar
    (on fragile problems it is often too thin to see). Input: nsr.answer_distributions."""
    methods = list(dict.fromkeys(table["method"]))
    shown = shown_problems(table)
    several_sets = table["test_set"].nunique() > 1
    columns = max(1, min(PANEL_COLUMNS, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.8):
        fig = Figure(figsize=(3.6 * columns + 0.6, (0.26 * len(methods) + 1.3) * rows + 1.2), layout="constrained")
        axes = fig.subplots(rows, columns, squeeze=False, sharex=True)
        for ax in axes.flat[len(shown):]:
            ax.set_axis_off()
        if not shown:
            axes[0][0].text(0.5, 0.5, "no fragile (base p <= 5%) or easy problem in the test sets",
                            ha="center", va="center")
        for ax, (test_set, pid) in zip(axes.flat, shown):
            block = table[(table["test_set"] == test_set) & (table["problem_id"] == pid)]
            shares = block.pivot(index="method", columns="category", values="share").reindex(index=methods,
                                                                                             columns=list(CATEGORIES))
            left = pd.Series(0.0, index=methods)
            for category in CATEGORIES:
                ax.barh(methods, shares[category], left=left, color=CATEGORY_COLORS[category], edgecolor="white",
                        linewidth=0.4)
                left += shares[category]
            for y, right in enumerate(shares["right"]):
                ax.text(1.02, y, f"{100 * right:.1f}%", ha="left", va="center", fontsize=7,
                        color=CATEGORY_COLORS["right"], transform=ax.get_yaxis_transform())
            ax.invert_yaxis()
            ax.set_xlim(0, 1)
            ax.xaxis.set_major_formatter(PercentFormatter(1.0))
            ax.tick_params(axis="y", labelsize=7)
            ax.set_title(_panel_title(block, test_set if several_sets else None), fontsize=8)
            if block["selection"].iloc[0] == "easy":
                ax.set_facecolor("#efefef")
        handles = [Patch(color=CATEGORY_COLORS[c], label=CATEGORY_LABELS[c]) for c in CATEGORIES]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(CATEGORIES), frameon=False, fontsize=8)
        fragile = set(map(tuple, table.loc[table["selection"] == "fragile", ["test_set", "problem_id"]].to_numpy()))
        contrast = contrast_methods(methods)
        gap = "-".join(m.upper() for m in contrast) + " gap" if len(contrast) == 2 else "spread over the methods"
        fig.suptitle(title or "Answer distributions (all seeds pooled): each method's samples on the base's fragile "
                     f"problems (p <= 5%; {len(fragile & set(shown))} of {len(fragile)} drawn: largest {gap} in "
                     "the right share)\nand a few easy ones (grey); beside each bar its right share", fontsize=9)
    return fig
