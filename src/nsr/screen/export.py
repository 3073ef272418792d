"""Keep a screened run's evidence in the repository: the workdirs (benchmarks/out/) are not committed,
so a run a decision rests on (the best variants, a confirmed default) has its card, difficulty table,
Pass@k table and figures copied next to the grid's table: docs/screening/<grid>/<variant>/<seed set>/."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

from nsr.io import InputError, atomic_path
from nsr.screen.execution import _stored_row
from nsr.screen.grid import Run

# What a reader needs to judge a run without re-running it (a stage-0 run has the card only).
# Tables rather than the figures that repeat them (a commit pays for every figure); the answer
# distributions have no table as readable.
EXPORTED = ("base_card.md", "comparison_pass_at_k.md", "coverage_by_difficulty.md", "answer_forms.md",
            "answer_distributions.png")


def export_runs(runs: Iterable[Run], variants: Iterable[str], destination: Path) -> list[Path]:
    """Copy EXPORTED (those a run has) of every run of ``variants`` into destination/<variant>/<seed
    set>/; every selected run must have finished with the grid's current config. Returns the copies."""
    variants = set(variants)
    selected = [run for run in runs if run.variant in variants]
    unknown = sorted(variants - {run.variant for run in selected})
    if unknown:
        raise InputError(f"--export: {unknown} are not variants of the grid")
    unfinished = [f"{run.variant}/{run.seed_set}" for run in selected if _stored_row(run) is None]
    if unfinished:
        raise InputError(f"--export: {unfinished} have no current result (run them first)")
    copies = []
    for run in selected:
        results = run.workdir / "results"
        if not (results / "base_card.md").exists():
            raise InputError(f"--export: {results / 'base_card.md'} is missing")
        target = destination / run.variant / run.seed_set
        target.mkdir(parents=True, exist_ok=True)
        for name in EXPORTED:
            if (results / name).exists():
                with atomic_path(target / name) as tmp:
                    shutil.copyfile(results / name, tmp)
                copies.append(target / name)
    return copies
