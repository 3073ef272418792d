"""Coverage by base difficulty: which test problems each method solves, binned by how often the base does.

The paper's claim about large k is about the hard problems: NSR keeps (or widens) the set of
problems a model solves at all, PSR narrows it. So the test problems are binned by the base's
success rate p (correct samples / samples of the problem, all base seeds pooled):

    0  (0,1%]  (1,5%]  (5,20%]  (20,100%]         (edges inclusive above, exact in integers)

and per bin and method the table has

    problems          the bin's problem count (the same for every method)
    solved_pct        % of the bin's problems solved at least once in a seed's n samples,
                      mean over the method's seeds
    mean_success_pct  mean per-problem success rate (correct / n) in %, mean over its seeds

Every bin is a row, also an empty one (problems 0, both shares empty/NaN), so every test set's
block has the same shape. The base is a method too: its solved share in bin ``0`` is 0 by
definition, elsewhere below 100 where one of its seeds missed a problem the others solved.
The fragile bins (base p <= 5%) are what the screen's table sums up (``fragile_coverage``).

``nsr coverage --set NAME SAMPLES... [--set ...] --output coverage_by_difficulty.png`` writes
the figure and the ``.csv`` / ``.md`` tables next to it; a samples file's folder names its
method (results/samples/{method}/seed{seed}.parquet), as for `nsr forms`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from nsr.cli import add_test_set_flags, test_set_groups
from nsr.io import InputError
from nsr.passk import counts_per_problem, load_samples

BASE_METHOD = "base"
# (label, upper edge in % of samples); a problem falls in the first bin whose edge its p reaches.
BIN_EDGES = (("0", 0), ("(0,1%]", 1), ("(1,5%]", 5), ("(5,20%]", 20), ("(20,100%]", 100))
BINS = tuple(label for label, _ in BIN_EDGES)
FRAGILE_BINS = BINS[:3]  # base p <= 5%: the problems a method can lose or win at large k
COLUMNS = ("test_set", "method", "bin", "problems", "solved_pct", "mean_success_pct")


def difficulty_bin(correct: int, samples: int) -> str:
    """The bin of a problem the base solved ``correct`` times in ``samples``; edges compared in
    integers (100 c <= edge n), so p of exactly 1%, 5% or 20% lands in the bin it closes."""
    for label, edge in BIN_EDGES:
        if 100 * correct <= edge * samples:
            return label
    raise ValueError(f"{correct} correct of {samples} samples")


def difficulty_bins(base_runs: Sequence[pd.DataFrame]) -> pd.Series:
    """problem_id -> bin from the base's per-seed counts (nsr.passk.counts_per_problem), pooled."""
    pooled = pd.concat(base_runs).groupby("problem_id", sort=True)[["n", "c"]].sum()
    return pd.Series([difficulty_bin(int(c), int(n)) for n, c in zip(pooled["n"], pooled["c"])],
                     index=pooled.index, name="bin")


def coverage_rows(runs: Mapping[str, Sequence[pd.DataFrame]], base: str = BASE_METHOD) -> pd.DataFrame:
    """One test set: rows (method, bin, problems, solved_pct, mean_success_pct), methods in
    ``runs`` order, every bin of BINS. ``runs``: method -> its seeds' counts (problem_id, n, c)
    over the same problems."""
    if base not in runs:
        raise InputError(f"no samples of the base method {base!r} (methods: {list(runs)})")
    bins = difficulty_bins(runs[base])
    problems = bins.value_counts().reindex(BINS, fill_value=0)
    rows = []
    for method, seeds in runs.items():
        per_seed = []
        for counts in seeds:
            counts = counts.set_index("problem_id").reindex(bins.index)
            by_problem = pd.DataFrame({"bin": bins, "solved": counts["c"] > 0, "success": counts["c"] / counts["n"]})
            per_seed.append(by_problem.groupby("bin")[["solved", "success"]].mean().reindex(BINS).to_numpy())
        solved, success = 100 * np.mean(per_seed, axis=0).T  # NaN stays NaN: an empty bin
        rows += [{"method": method, "bin": label, "problems": int(problems[label]), "solved_pct": solved[i],
                  "mean_success_pct": success[i]} for i, label in enumerate(BINS)]
    return pd.DataFrame(rows)


def samples_by_method(paths: Sequence[str | Path], base: str = BASE_METHOD,
                      extra_columns: Sequence[str] = ()) -> dict[str, list[tuple[Path, pd.DataFrame]]]:
    """method (a file's folder name) -> (path, samples of nsr.passk.load_samples) per file, in the
    given order; every file must hold the problems of the base's first file, so that a problem's
    base difficulty means the same problems for every method."""
    runs: dict[str, list[tuple[Path, pd.DataFrame]]] = {}
    for path in map(Path, paths):
        runs.setdefault(path.parent.name, []).append((path, load_samples(path, extra_columns=extra_columns)))
    if base not in runs:
        raise InputError(f"no samples file of the base method {base!r} (a file's folder names its method; "
                         f"got {sorted(runs)})")
    reference_path, reference = runs[base][0]
    expected = set(reference["problem_id"])
    for path, samples in (run for seeds in runs.values() for run in seeds):
        found = set(samples["problem_id"])
        if found != expected:
            odd = sorted(found ^ expected)
            raise InputError(f"samples file {path}: its problems differ from those of {reference_path} "
                             f"({len(found)} vs {len(expected)} problems; e.g. {odd[0]!r} in only one)")
    return runs


def load_runs(paths: Sequence[str | Path], base: str = BASE_METHOD) -> dict[str, list[pd.DataFrame]]:
    """method (a file's folder name) -> per-file counts (problem_id, n, c), checked as samples_by_method."""
    return {method: [counts_per_problem(samples) for _, samples in seeds]
            for method, seeds in samples_by_method(paths, base).items()}


def coverage_table(test_sets: Sequence[tuple[str, Sequence[str | Path]]], base: str = BASE_METHOD) -> pd.DataFrame:
    """The CSV: one block of methods x BINS per (test set name, samples files), in the given order."""
    blocks = [coverage_rows(load_runs(paths, base), base).assign(test_set=name) for name, paths in test_sets]
    return pd.concat(blocks, ignore_index=True)[list(COLUMNS)]


def fragile_coverage(table: pd.DataFrame, test_set: str) -> tuple[int, dict[str, float]]:
    """(problems with base p <= 5%, method -> % of them solved, mean over seeds; NaN without any)."""
    rows = table[(table["test_set"] == test_set) & table["bin"].isin(FRAGILE_BINS)]
    problems = int(rows.groupby("method", sort=False)["problems"].sum().iloc[0]) if len(rows) else 0
    solved = {}
    for method, group in rows.groupby("method", sort=False):
        # a problem-weighted mean of the bins' shares (an empty bin's NaN share weighs nothing)
        solved[method] = (float((group["solved_pct"].fillna(0) * group["problems"]).sum() / problems)
                          if problems else math.nan)
    return problems, solved


def _percent(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:.1f}"


def markdown_table(table: pd.DataFrame) -> str:
    """Per test set: one row per bin (with its problem count), one `solved % (mean success %)`
    cell per method; '–' where the bin has no problems."""
    lines = []
    for test_set, rows in table.groupby("test_set", sort=False):
        methods = list(dict.fromkeys(rows["method"]))
        cells = rows.set_index(["bin", "method"])
        total = int(rows.drop_duplicates("bin")["problems"].sum())
        lines += [f"**{test_set}** ({total} problems): % of problems solved at least once in n samples "
                  "(mean per-problem success %), means over seeds; problems binned by the base's success "
                  "rate p, all base seeds pooled", "",
                  "| base p | problems | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
        for label in BINS:
            problems = int(cells.loc[(label, methods[0]), "problems"])
            lines.append(f"| {label} | {problems} | " + " | ".join(
                f"{_percent(cells.loc[(label, m), 'solved_pct'])} ({_percent(cells.loc[(label, m), 'mean_success_pct'])})"
                if problems else "–" for m in methods) + " |")
        lines.append("")
    return "\n".join(lines)


def coverage_figure(table: pd.DataFrame, title: str | None = None):
    """Grouped bars: per bin (with its problem count) each method's solved share, the base's
    among them; one panel per test set."""
    import seaborn as sns
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    from nsr.plotting import method_palette

    test_sets = list(dict.fromkeys(table["test_set"]))
    methods = list(dict.fromkeys(table["method"]))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        fig = Figure(figsize=(1.4 * len(BINS) * len(test_sets) + 1.5, 4.2), layout="constrained")
        axes = fig.subplots(1, len(test_sets), squeeze=False, sharey=True)[0]
        for ax, test_set in zip(axes, test_sets):
            rows = table[table["test_set"] == test_set]
            counts = rows.drop_duplicates("bin").set_index("bin")["problems"]
            sns.barplot(data=rows, x="bin", y="solved_pct", hue="method", order=BINS, hue_order=methods,
                        palette=method_palette(methods), ax=ax, legend=False)
            for bars in ax.containers:  # the value on each bar: a 0 bar is otherwise invisible
                ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.0f}" for v in bars.datavalues], fontsize=7)
            ax.set_xticks(range(len(BINS)), [f"{label}\n{counts[label]} probl." for label in BINS])
            ax.set_ylim(0, 110)
            ax.yaxis.set_major_formatter(PercentFormatter(100))
            ax.set_xlabel("base success rate p (all base seeds pooled)")
            ax.set_ylabel("problems solved at least once in n")
            ax.set_title(test_set)
        # below the panels: bars reach 100% in any bin, so no corner of a panel is free
        palette = method_palette(methods)
        handles = [Patch(color=palette[m], label=m) for m in methods]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(methods), frameon=False)
        fig.suptitle(title or "Coverage by base difficulty: share of each bin's problems solved (mean over seeds)")
    return fig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_test_set_flags(parser, [], "then its samples files (method = a file's folder name, seeds = its files)")
    parser.add_argument("--base", default=BASE_METHOD,
                        help=f"the method whose success rate bins the problems (default: {BASE_METHOD})")


def run(args: argparse.Namespace) -> None:
    from nsr.plotting import write_figure_and_tables  # seaborn: only when drawing

    table = coverage_table(test_set_groups(args.sets, []), args.base)
    # an empty bin's shares (NaN) are empty CSV cells
    write_figure_and_tables(coverage_figure(table), table, markdown_table(table), args.output)
    print(markdown_table(table))
