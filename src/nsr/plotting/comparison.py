"""nsr.plotting's comparison: Pass@k results loaded (with paired differences to the base), the
Pass@k-against-k figure and its markdown table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from nsr.io import InputError
from nsr.passk import DEFAULT_TEST_SET
from nsr.plotting.common import method_palette, write_figure_and_tables

TABLE_KS = (1, 8, 64, 256)


def load_results(paths: Sequence[str | Path], labels: Sequence[str] | None = None,
                 base_method: str = "base") -> pd.DataFrame:
    """Long table (test_set, method, k, pass_at_k, ci_low, ci_high, std, num_seeds, num_problems,
    diff_vs_base, diff_ci_low, diff_ci_high) from pass_at_k JSON files; the method is the JSON's
    "method" unless ``labels`` name it, the test set the JSON's "test_set" (files written before
    test sets existed: "test"). The diff columns compare each method with ``base_method``."""
    if labels and len(labels) != len(paths):
        raise InputError(f"--labels: {len(labels)} label(s) for {len(paths)} result file(s)")
    frames, results = [], {}
    read = [_read_result(Path(path)) for path in paths]
    methods = [str(result.get("method") or Path(path).stem) for path, result in zip(paths, read)]
    for path, result, method in zip(paths, read, _legend_labels(methods, labels)):
        results[(str(result.get("test_set") or DEFAULT_TEST_SET), method)] = result
        ks = sorted(result["pass_at_k"], key=int)
        ci = result.get("ci95") or {}
        std = result.get("std") or {}
        frames.append(pd.DataFrame({
            "test_set": str(result.get("test_set") or DEFAULT_TEST_SET),
            "method": method,
            "k": [int(k) for k in ks],
            "pass_at_k": [float(result["pass_at_k"][k]) for k in ks],
            "ci_low": [float(ci[k][0]) if k in ci else np.nan for k in ks],
            "ci_high": [float(ci[k][1]) if k in ci else np.nan for k in ks],
            "std": [float(std[k]) if k in std else np.nan for k in ks],
            "num_seeds": len(result["seeds"]) if "seeds" in result else np.nan,
            "num_problems": result.get("num_problems", np.nan),
        }))
    table = pd.concat(frames, ignore_index=True)
    duplicated = table.loc[table.duplicated(["test_set", "method", "k"]), "method"].unique().tolist()
    if duplicated:
        raise InputError(f"--results: method(s) {duplicated} appear in several files of one test set; give "
                         "--labels, or aggregate seeds first with `nsr passk --samples seed*.parquet`")
    return add_paired_differences(table, results, base_method)


def _legend_labels(methods: list[str], labels: Sequence[str] | None) -> list[str]:
    """Each result file's legend label. Labels that name the files' methods (case aside) go to the
    file of that method, whatever the order: the guide's `--results results_*.json --labels "GRPO"
    "PSR" "NSR" "W-REINFORCE"` gets its files from a shell glob in alphabetical order (grpo, nsr,
    psr, w-reinforce), and matching by position would swap PSR and NSR. Other labels go by position."""
    if not labels:
        return methods
    by_name = {label.lower(): label for label in labels}
    if len(by_name) == len(labels) and sorted(by_name) == sorted(m.lower() for m in methods):
        return [by_name[m.lower()] for m in methods]
    return list(labels)


def add_paired_differences(table: pd.DataFrame, results: dict, base_method: str = "base") -> pd.DataFrame:
    """Columns diff_vs_base, diff_ci_low, diff_ci_high: each method's Pass@k minus the base's on the
    same problems, with a paired bootstrap CI over problems (nsr.passk.paired_difference).

    ``results`` maps (test_set, method) to its pass_at_k JSON; only JSONs with per-problem values
    (`nsr passk` writes them) are compared, others (and the base itself) get NaN.
    """
    from nsr.passk import paired_difference

    table = table.assign(diff_vs_base=np.nan, diff_ci_low=np.nan, diff_ci_high=np.nan)
    for (test_set, method), result in results.items():
        reference = results.get((test_set, base_method))
        if method == base_method or reference is None or "per_problem" not in result or "per_problem" not in reference:
            continue
        ours, theirs = _per_problem_frame(result), _per_problem_frame(reference)
        if set(ours.index) != set(theirs.index):
            raise InputError(f"test set {test_set!r}: {method} and {base_method} were scored on different problems; "
                             "a paired difference needs the same problems")
        ks = [k for k in ours.columns if k in theirs.columns]
        boot = result.get("bootstrap") or {}
        mean, lo, hi = paired_difference(ours[ks].to_numpy(), theirs.loc[ours.index, ks].to_numpy(),
                                         int(boot.get("replicates", 1000)), int(boot.get("seed", 0)))
        for j, k in enumerate(ks):
            rows = (table["test_set"] == test_set) & (table["method"] == method) & (table["k"] == k)
            table.loc[rows, ["diff_vs_base", "diff_ci_low", "diff_ci_high"]] = [mean[j], lo[j], hi[j]]
    return table


def _per_problem_frame(result: dict) -> pd.DataFrame:
    per_problem = result["per_problem"]
    return pd.DataFrame({int(k): v for k, v in per_problem["pass_at_k"].items()},
                        index=per_problem["problem_id"])


def _read_result(path: Path) -> dict:
    try:
        result = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"result file {path} is unreadable: {exc}") from exc
    if not isinstance(result, dict) or not isinstance(result.get("pass_at_k"), dict) or not result["pass_at_k"]:
        raise InputError(f"result file {path}: expected an object with a non-empty 'pass_at_k' mapping")
    try:
        for k, value in result["pass_at_k"].items():
            int(k), float(value)
        for k, bounds in (result.get("ci95") or {}).items():
            float(bounds[0]), float(bounds[1])
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise InputError(f"result file {path}: 'pass_at_k' / 'ci95' must map k to numbers ({exc})") from exc
    return result


def comparison_figure(table: pd.DataFrame, base_method: str = "base", title: str | None = None) -> Figure:
    """Pass@k vs k on a log2 axis, one panel per test set (in table order); one line per method,
    CI bands, ``base_method`` dashed; the legend in the first panel."""
    test_sets = list(dict.fromkeys(table["test_set"]))
    palette = method_palette(list(dict.fromkeys(table["method"])))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        fig = Figure(figsize=(6.5 * len(test_sets) + 1, 5), layout="constrained")
        axes = fig.subplots(1, len(test_sets), squeeze=False)[0]
        for ax, test_set in zip(axes, test_sets):
            panel = table[table["test_set"] == test_set]
            for method in dict.fromkeys(panel["method"]):  # one call per method: one labelled line each
                rows = panel[panel["method"] == method]
                sns.lineplot(data=rows, x="k", y="pass_at_k", color=palette[method], label=method, marker="o",
                             markersize=5, linestyle="--" if method == base_method else "-", errorbar=None,
                             ax=ax)
                if rows["ci_low"].notna().any():
                    ax.fill_between(rows["k"], rows["ci_low"], rows["ci_high"], color=palette[method],
                                    alpha=0.2, linewidth=0)
            ks = sorted(panel["k"].unique())
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, labels=[str(k) for k in ks])
            ax.minorticks_off()
            low, high = ax.get_ylim()  # autoscaled to the data (differences at large k stay visible)
            ax.set_ylim(max(low, 0.0), min(high, 1.0))  # but a probability axis never leaves [0, 1]
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.set_xlabel("k (samples per problem)")
            ax.set_ylabel("Pass@k")
            ax.set_title(f"{test_set}{_problems_suffix(panel)}")
            if ax is axes[0]:
                ax.legend(title="method", loc="lower right", frameon=True)
            else:
                ax.get_legend().remove()
        fig.suptitle(title or "Pass@k by method (shaded: 95% bootstrap CI over problems)")
    return fig


def _problems_suffix(rows: pd.DataFrame) -> str:
    problems = rows["num_problems"].dropna().unique()
    return f" ({int(problems[0])} problems)" if len(problems) == 1 else ""


def markdown_table(table: pd.DataFrame, ks: Sequence[int] = TABLE_KS) -> str:
    """Per test set a heading and a table: methods as rows, Pass@k (percent) for ``ks`` as
    columns, '–' where k was not reported; then the difference to the base at the smallest and
    largest k with its paired 95% CI (when the table has differences)."""
    sections = []
    for test_set, panel in table.groupby("test_set", sort=False):
        diff_ks = _difference_ks(panel)
        header = [f"Pass@{k}" for k in ks] + [f"Δ Pass@{k} vs base" for k in diff_ks]
        lines = [f"### {test_set}{_problems_suffix(panel)}", "",
                 "| method | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
        for method, rows in panel.groupby("method", sort=False):
            rows = rows.set_index("k")
            cells = []
            for k in ks:
                if k not in rows.index:
                    cells.append("–")
                    continue
                row = rows.loc[k]
                cell = f"{100 * row['pass_at_k']:.1f}"
                if pd.notna(row["std"]):
                    cell += f" ± {100 * row['std']:.1f}"
                if pd.notna(row["ci_low"]):
                    cell += f" [{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"
                cells.append(cell)
            for k in diff_ks:
                row = rows.loc[k] if k in rows.index else None
                cells.append("–" if row is None or pd.isna(row["diff_vs_base"]) else
                             f"{100 * row['diff_vs_base']:+.1f} [{100 * row['diff_ci_low']:+.1f}, "
                             f"{100 * row['diff_ci_high']:+.1f}]")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def _difference_ks(panel: pd.DataFrame) -> list[int]:
    """Pass@1 and Pass@n (the largest k) when some method of the panel has a paired difference."""
    if "diff_vs_base" not in panel or panel["diff_vs_base"].isna().all():
        return []
    ks = sorted(panel.loc[panel["diff_vs_base"].notna(), "k"].unique())
    return sorted({int(ks[0]), int(ks[-1])})


def write_comparison(table: pd.DataFrame, output: str | Path, base_method: str = "base",
                     title: str | None = None) -> Figure:
    """The comparison PNG plus ``.csv`` (long) and ``.md`` tables with the same stem."""
    fig = comparison_figure(table, base_method, title)
    write_figure_and_tables(fig, table, markdown_table(table), output, float_format=None)
    return fig
