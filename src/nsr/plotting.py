"""Seaborn figures and tables of the study; the `nsr plot` command.

* Comparison: Pass@k against k (log2 axis), one panel per test set, one line per method with
  its 95% CI band, the base model dashed. Tables next to the PNG (same stem):
  - ``.csv`` in long format, one row per (test_set, method, k): test_set, method, k, pass_at_k,
    ci_low, ci_high, and std / num_seeds when the JSON aggregates several seeds (empty otherwise);
  - ``.md``: per test set, methods as rows, Pass@1/8/64/256 as columns, "value [CI low, CI high]"
    in percent.
* Training dynamics: reward, fraction correct and token entropy per step, one smoothed line
  per method (the mean over its seeds) over the faint raw values.

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

from nsr.io import InputError, atomic_path
from nsr.passk import DEFAULT_TEST_SET

TABLE_KS = (1, 8, 64, 256)
DYNAMICS_PANELS = (("reward_mean", "reward (mean)"), ("frac_correct", "fraction correct"),
                   ("entropy", "token entropy"))
TRAIN_LOG_COLUMNS = ("step",) + tuple(col for col, _ in DYNAMICS_PANELS)
# Held-out evaluation (nsr train --eval-every): sparse rows, drawn as points-and-lines when present.
EVAL_PANELS = (("eval_entropy", "held-out token entropy"), ("eval_accuracy", "held-out greedy accuracy"))
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
def load_results(paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table (test_set, method, k, pass_at_k, ci_low, ci_high, std, num_seeds, num_problems)
    from pass_at_k JSON files; the method is the JSON's "method" unless ``labels`` name it, the
    test set the JSON's "test_set" (files written before test sets existed: "test")."""
    if labels and len(labels) != len(paths):
        raise InputError(f"--labels: {len(labels)} label(s) for {len(paths)} result file(s)")
    frames = []
    for i, path in enumerate(paths):
        result = _read_result(Path(path))
        method = labels[i] if labels else str(result.get("method") or Path(path).stem)
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
    return table


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
    columns, '–' where k was not reported."""
    sections = []
    for test_set, panel in table.groupby("test_set", sort=False):
        lines = [f"### {test_set}{_problems_suffix(panel)}", "",
                 "| method | " + " | ".join(f"Pass@{k}" for k in ks) + " |", "|---|" + "---:|" * len(ks)]
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
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


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
    """Three panels (reward, fraction correct, token entropy) against step; per method a smoothed
    line (mean over its runs) over the raw values drawn faint. ``window`` defaults to 1/10 of
    the longest run. Held-out evaluation columns, when logged, add one panel each."""
    window = window or max(1, int(logs.groupby("run").size().max()) // 10)
    methods = list(dict.fromkeys(logs["method"]))
    palette = method_palette(methods)
    logs = logs.copy()
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        eval_panels = [(c, l) for c, l in EVAL_PANELS if c in logs.columns and logs[c].notna().any()]
        panels = list(DYNAMICS_PANELS) + eval_panels
        fig = Figure(figsize=(5 * len(panels), 4.2), layout="constrained")
        axes = fig.subplots(1, len(panels), sharex=True)
        for ax, (column, label) in zip(axes[len(DYNAMICS_PANELS):], eval_panels):
            rows = logs.dropna(subset=[column])
            for method in methods:
                sns.lineplot(data=rows[rows["method"] == method], x="step", y=column, color=palette[method],
                             errorbar=None, marker="o", linewidth=2, label=method, ax=ax)
            ax.get_legend().remove()
            ax.set_title(label)
            ax.set_xlabel("training step")
            ax.set_ylabel(label)
        for ax, (column, label) in zip(axes, DYNAMICS_PANELS):
            logs["smoothed"] = logs.groupby("run")[column].transform(lambda s: smooth(s, window))
            for method in methods:
                rows = logs[logs["method"] == method]  # several runs: mean over them per step
                sns.lineplot(data=rows, x="step", y=column, color=palette[method], errorbar=None, alpha=0.25,
                             linewidth=0.8, ax=ax)
                sns.lineplot(data=rows, x="step", y="smoothed", color=palette[method], errorbar=None,
                             linewidth=2, label=method, ax=ax)
            if ax is not axes[0]:  # one legend for the figure
                ax.get_legend().remove()
            ax.set_title(label)
            ax.set_xlabel("training step")
            ax.set_ylabel(label)
        axes[0].legend(title="method", frameon=True)
        fig.suptitle(title or f"Training dynamics (lines: rolling mean over {window} steps; faint: raw)")
    return fig


# ---------------------------------------------------------------- outputs
def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        # the temp name has no image suffix, so the format comes from the target
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi)


def write_comparison(table: pd.DataFrame, output: str | Path, base_method: str = "base",
                     title: str | None = None) -> Figure:
    """The comparison PNG plus ``.csv`` (long) and ``.md`` tables with the same stem."""
    output = Path(output)
    fig = comparison_figure(table, base_method, title)
    save_figure(fig, output)
    with atomic_path(output.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(output.with_suffix(".md")) as tmp:
        tmp.write_text(markdown_table(table))
    return fig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", nargs="+", default=[],
                        help="pass_at_k JSON files, one per (test set, method); panels in file order")
    parser.add_argument("--labels", nargs="+", default=None, help="legend labels, one per --results file")
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
    table = load_results(args.results, args.labels) if args.results else None
    logs = load_train_logs(args.train_logs, args.labels_train) if args.train_logs else None
    if table is not None:
        write_comparison(table, args.output, args.base_method, args.title)
        print(markdown_table(table), end="")
        print(f"wrote {args.output} (+ .csv, .md)")
    if logs is not None:
        save_figure(dynamics_figure(logs, args.smooth_window), args.dynamics_output)
        print(f"wrote {args.dynamics_output}")
