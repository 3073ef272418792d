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
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from nsr.forms import ALL_TYPES, FORMS
from nsr.io import InputError, atomic_path
from nsr.passk import DEFAULT_TEST_SET

TABLE_KS = (1, 8, 64, 256)
DYNAMICS_PANELS = (("reward_mean", "reward (mean)"), ("frac_correct", "fraction correct"),
                   ("entropy", "token entropy"))
TRAIN_LOG_COLUMNS = ("step",) + tuple(col for col, _ in DYNAMICS_PANELS)
# Held-out evaluation (nsr train --eval-every; nsr.trainer.HeldOutEvalCallback): sparse rows from
# step 0 (the base) on, a second row of panels when present. "{k}" is the log's eval_k.
EVAL_PANELS = (("eval_pass_at_1", "held-out Pass@1"), ("eval_pass_at_k", "held-out Pass@{k}"),
               ("eval_malformed", "held-out malformed share"), ("eval_entropy", "held-out token entropy"),
               ("eval_accuracy", "held-out greedy accuracy"))
SHARE_COLUMNS = ("frac_correct", "eval_pass_at_1", "eval_pass_at_k", "eval_malformed", "eval_accuracy")
# Known methods keep one colour in every figure; other names take the following colours.
KNOWN_METHODS = ("base", "grpo", "psr", "nsr", "w-reinforce")


def method_palette(methods: Sequence[str]) -> dict:
    colors = sns.color_palette("colorblind", 10)
    known = [m for m in methods if m.lower() in KNOWN_METHODS]
    others = [m for m in dict.fromkeys(methods) if m.lower() not in KNOWN_METHODS]
    palette = {m: colors[KNOWN_METHODS.index(m.lower())] for m in known}
    palette.update({m: colors[(len(KNOWN_METHODS) + i) % len(colors)] for i, m in enumerate(others)})
    return palette


# ---------------------------------------------------------------- comparison
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


# ---------------------------------------------------------------- training dynamics
def load_train_logs(paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Concatenated train_log.csv rows with ``method`` and ``run`` columns. The method is the
    label, else the folder above the run (results/models/{method}/seed{seed}/train_log.csv)."""
    if labels and len(labels) != len(paths):
        raise InputError(f"--labels-train: {len(labels)} label(s) for {len(paths)} train log(s)")
    frames = []
    for i, path in enumerate(paths):
        path = Path(path)
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise InputError(f"train log {path} is unreadable: {exc}") from exc
        missing = [col for col in TRAIN_LOG_COLUMNS if col not in frame.columns]
        if missing:
            raise InputError(f"train log {path} lacks column(s) {missing}")
        if frame.empty:
            raise InputError(f"train log {path} has no rows")
        bad = [col for col in TRAIN_LOG_COLUMNS if not pd.api.types.is_numeric_dtype(frame[col])]
        if bad:
            raise InputError(f"train log {path}: column(s) {bad} must be numeric")
        frame = frame.sort_values("step").reset_index(drop=True)
        frame["method"] = labels[i] if labels else path.parent.parent.name
        frame["run"] = i
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def smooth(values: pd.Series, window: int) -> pd.Series:
    """Trailing rolling mean (the start uses what exists, so no leading gap)."""
    return values.rolling(window, min_periods=1).mean()


def dynamics_figure(logs: pd.DataFrame, window: int | None = None, title: str | None = None) -> Figure:
    """Training panels (reward, fraction correct, token entropy) against step: per method a smoothed
    line (mean over its runs) over the raw values drawn faint; ``window`` defaults to 1/10 of the
    longest run. Held-out evaluation columns, when logged, add a second row (Pass@1, Pass@k,
    malformed share, token entropy, greedy accuracy): per method the mean over its runs at each
    evaluated step with a +-1 std band over runs, and the base (step 0, where every method starts)
    as a black diamond. One legend for the figure, below the panels."""
    window = window or max(1, int(logs.groupby("run").size().max()) // 10)
    methods = list(dict.fromkeys(logs["method"]))
    palette = method_palette(methods)
    logs = logs.copy()
    eval_panels = [(c, _eval_label(logs, c, label)) for c, label in EVAL_PANELS
                   if c in logs.columns and logs[c].notna().any()]
    columns = max(len(DYNAMICS_PANELS), len(eval_panels))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        fig = Figure(figsize=(4.2 * columns, 3.6 * (1 + bool(eval_panels)) + 0.8), layout="constrained")
        grid = fig.subplots(1 + bool(eval_panels), columns, squeeze=False, sharex=True)
        for ax, (column, label) in zip(grid[0], DYNAMICS_PANELS):
            logs["smoothed"] = logs.groupby("run")[column].transform(lambda s: smooth(s, window))
            for method in methods:
                rows = logs[logs["method"] == method]  # several runs: mean over them per step
                sns.lineplot(data=rows, x="step", y=column, color=palette[method], errorbar=None, alpha=0.25,
                             linewidth=0.8, ax=ax)
                sns.lineplot(data=rows, x="step", y="smoothed", color=palette[method], errorbar=None,
                             linewidth=2, label=method, ax=ax)
            _label_panel(ax, column, label)
        for ax, (column, label) in zip(grid[1] if eval_panels else [], eval_panels):
            rows = logs.dropna(subset=[column])
            for method in methods:
                sns.lineplot(data=rows[rows["method"] == method], x="step", y=column, color=palette[method],
                             errorbar="sd", err_kws={"alpha": 0.15}, marker="o", markersize=5, linewidth=2,
                             label=method, ax=ax)
            base = rows.loc[rows["step"] == 0, column]
            if len(base):  # the same start for every method (one base): its mean over runs
                ax.plot([0], [base.mean()], marker="D", markersize=8, color="black", linestyle="none",
                        label="base (step 0)", zorder=5)
            _label_panel(ax, column, label)
        for ax in grid.flat[len(DYNAMICS_PANELS):columns]:
            ax.remove()  # training panels are fewer than held-out ones
        for ax in grid[1][len(eval_panels):] if eval_panels else []:
            ax.remove()
        legend_from = grid[1][0] if eval_panels else grid[0][0]
        handles, labels = legend_from.get_legend_handles_labels()
        for ax in fig.axes:
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        fig.legend(handles, labels, title="method", loc="outside lower center", ncols=len(labels), frameon=False)
        fig.suptitle(title or f"Training dynamics (top: rolling mean over {window} steps, faint: raw; "
                              "bottom: held-out evaluation, mean over seeds +- 1 std)")
    return fig


def _eval_label(logs: pd.DataFrame, column: str, label: str) -> str:
    """A panel title; Pass@{k} names the logged eval_k (several k across runs: "k = eval_samples")."""
    ks = logs["eval_k"].dropna().unique() if "eval_k" in logs.columns else []
    return label.format(k=int(ks[0]) if len(ks) == 1 else "k (k = eval_samples)")


def _label_panel(ax, column: str, label: str) -> None:
    ax.set_title(label)
    ax.set_xlabel("training step")
    ax.set_ylabel("")  # the title says it; the panels stay wide
    if column in SHARE_COLUMNS:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))


# ---------------------------------------------------------------- answer forms
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


# ---------------------------------------------------------------- outputs
def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        # the temp name has no image suffix, so the format comes from the target
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi)


def write_figure_and_tables(fig: Figure, table: pd.DataFrame, markdown: str, output: str | Path,
                            float_format: str | None = "%.6g") -> None:
    """``output`` (the figure) plus the ``.csv`` and ``.md`` tables with its stem; NaN = empty cell."""
    output = Path(output)
    with atomic_path(output.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False, float_format=float_format)
    with atomic_path(output.with_suffix(".md")) as tmp:
        tmp.write_text(markdown)
    save_figure(fig, output)


def write_comparison(table: pd.DataFrame, output: str | Path, base_method: str = "base",
                     title: str | None = None) -> Figure:
    """The comparison PNG plus ``.csv`` (long) and ``.md`` tables with the same stem."""
    fig = comparison_figure(table, base_method, title)
    write_figure_and_tables(fig, table, markdown_table(table), output, float_format=None)
    return fig


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
