"""Optimizer steps per rollout batch, per method, read from finished trainings' train_log.csv.

    python benchmarks/batch_filter_steps.py STUDY_DIR [STUDY_DIR ...] [--label NAME ...]

A STUDY_DIR is a study's working directory (its results/models/<method>/seed*/train_log.csv are
read), e.g. the screen's benchmarks/out/screen/issue23/spg4-subset/s2025. Every row of train_log.csv
is one optimizer step of the Trainer with its rollout batch (`rollout_batch`), that batch's kept
samples (`rollout_kept`) and whether the weights moved (`optimizer_step`, 0 for a step that
`train.batch_filter: subset` leaves out). Prints, per study and method: rollout batches, mean kept
samples per rollout batch, mean optimizer steps taken per rollout batch (over every rollout batch
of every training seed), and the share of rollout batches with no step at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from nsr.io import InputError


def steps_per_rollout(study: Path) -> pd.DataFrame:
    """One row per method of ``study``: rollout batches, kept and steps per rollout batch."""
    rows = []
    for log_path in sorted(study.glob("results/models/*/seed*/train_log.csv")):
        log = pd.read_csv(log_path)
        needed = {"rollout_batch", "rollout_kept", "optimizer_step"}
        if not needed <= set(log.columns):
            raise InputError(f"{log_path}: no {sorted(needed - set(log.columns))} columns (trained before they existed)")
        log = log.dropna(subset=["rollout_batch"])  # the step-0 evaluation row has none
        per_batch = log.groupby("rollout_batch").agg(kept=("rollout_kept", "first"), steps=("optimizer_step", "sum"))
        rows.append(per_batch.assign(method=log_path.parts[-3], seed=log_path.parts[-2]))
    if not rows:
        raise InputError(f"{study}: no results/models/*/seed*/train_log.csv")
    frame = pd.concat(rows)
    return frame.groupby("method", sort=False).agg(
        rollout_batches=("steps", "size"), kept_mean=("kept", "mean"), steps_mean=("steps", "mean"),
        steps_std=("steps", "std"), no_step_pct=("steps", lambda s: 100 * (s == 0).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=Path, help="study working directories")
    parser.add_argument("--label", nargs="*", default=None, help="a name per study (default: its path)")
    args = parser.parse_args()
    labels = args.label or [str(s) for s in args.studies]
    if len(labels) != len(args.studies):
        raise SystemExit("--label: give one name per study")
    print("| study | method | rollout batches | kept per rollout batch | optimizer steps per rollout batch "
          "(mean ± std) | rollout batches with no step |")
    print("|---|---|---:|---:|---:|---:|")
    for label, study in zip(labels, args.studies):
        for method, row in steps_per_rollout(study).iterrows():
            print(f"| {label} | {method} | {row['rollout_batches']:.0f} | {row['kept_mean']:.1f} | "
                  f"{row['steps_mean']:.2f} ± {row['steps_std']:.2f} | {row['no_step_pct']:.1f}% |")


if __name__ == "__main__":
    main()
