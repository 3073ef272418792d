"""nsr.plotting's training dynamics: train_log.csv files loaded and drawn per method, with the
held-out evaluation (nsr train --eval-every) as a second row of panels."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from nsr.io import InputError
from nsr.plotting.common import method_palette

DYNAMICS_PANELS = (("reward_mean", "reward (mean)"), ("frac_correct", "fraction correct"),
                   ("entropy", "token entropy"))
TRAIN_LOG_COLUMNS = ("step",) + tuple(col for col, _ in DYNAMICS_PANELS)
# train.group_filter (nsr.trainer.group_filter): the share of generated groups that trained
# (groups_kept / groups_generated, 100% without a filter) and of positives among their samples; logs
# written before these columns existed have neither, and the panels then show only the runs that do.
GROUP_PANELS = (("kept_group_share", "kept share of groups"), ("kept_positive_share", "positive share of kept samples"))
# Held-out evaluation (nsr train --eval-every; nsr.trainer.HeldOutEvalCallback): sparse rows from
# step 0 (the base) on, a second row of panels when present. "{k}" is the log's eval_k.
EVAL_PANELS = (("eval_pass_at_1", "held-out Pass@1"), ("eval_pass_at_k", "held-out Pass@{k}"),
               ("eval_malformed", "held-out malformed share"), ("eval_entropy", "held-out token entropy"),
               ("eval_accuracy", "held-out greedy accuracy"))
SHARE_COLUMNS = ("frac_correct", "eval_pass_at_1", "eval_pass_at_k", "eval_malformed", "eval_accuracy",
                 "kept_group_share", "kept_positive_share")


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
    """Training panels (reward, fraction correct, token entropy; with group_filter's columns in the logs
    also the kept share of groups and the positive share of the kept samples) against step: per method a
    smoothed line (mean over its runs) over the raw values drawn faint; ``window`` defaults to 1/10 of the
    longest run. Held-out evaluation columns, when logged, add a second row (Pass@1, Pass@k,
    malformed share, token entropy, greedy accuracy): per method the mean over its runs at each
    evaluated step with a +-1 std band over runs, and the base (step 0, where every method starts)
    as a black diamond. One legend for the figure, below the panels."""
    window = window or max(1, int(logs.groupby("run").size().max()) // 10)
    methods = list(dict.fromkeys(logs["method"]))
    palette = method_palette(methods)
    logs = logs.copy()
    if {"groups_kept", "groups_generated"} <= set(logs.columns):
        logs["kept_group_share"] = logs["groups_kept"] / logs["groups_generated"]
    train_panels = list(DYNAMICS_PANELS) + [(c, label) for c, label in GROUP_PANELS
                                            if c in logs.columns and logs[c].notna().any()]
    eval_panels = [(c, _eval_label(logs, c, label)) for c, label in EVAL_PANELS
                   if c in logs.columns and logs[c].notna().any()]
    columns = max(len(train_panels), len(eval_panels))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        fig = Figure(figsize=(4.2 * columns, 3.6 * (1 + bool(eval_panels)) + 0.8), layout="constrained")
        grid = fig.subplots(1 + bool(eval_panels), columns, squeeze=False, sharex=True)
        for ax, (column, label) in zip(grid[0], train_panels):
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
        for ax in grid.flat[len(train_panels):columns]:
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
