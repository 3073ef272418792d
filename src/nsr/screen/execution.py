"""nsr.screen's runs: one study per run (Snakemake in the run's folder), its row collected from
the study's results and stored (screen_row.json) for reuse while its config is unchanged."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import yaml

from nsr.base_card import CARD_CHECKS
from nsr.io import InputError, atomic_path
from nsr.paper_shape import ROLES, criteria, load
from nsr.screen.grid import REPO, Run, overrides_text
from nsr.screen.report import CARD_COLUMNS, TRAINED
from nsr.study_config import config_errors

ROW_FILE = "screen_row.json"


# Snakemake targets of a run by its grid's stage (none: the default target, the whole study).
STAGE_TARGETS = {"study": (), "base": ("results/base_card.csv",)}


def snakemake(config_path: Path, workdir: Path, cores: str | int, *extra: str,
              capture: bool = True) -> subprocess.CompletedProcess:
    """The study of ``config_path`` in ``workdir`` (the default target unless ``extra`` names
    targets); its output captured, or shown as it comes with ``capture=False``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", str(cores),
                           "--configfile", str(config_path), "--directory", str(workdir), *extra],
                          capture_output=capture, text=True, env=env)


def _primary_test_set(table, config: dict) -> str:
    name = config["data"].get("test_name")
    return name if name in set(table["test_set"]) else table["test_set"].iloc[0]


def collect_card(results: Path, config: dict) -> dict:
    """The base card's numbers (percent) on the primary test set (results/base_card.csv, its ``all``
    row), the fragile problems per question type, and which targets of a paper-like base it meets."""
    import pandas as pd

    from nsr.base_card import ALL_TYPES, CARD_CHECKS, card_checks, fragile_types

    card = pd.read_csv(results / "base_card.csv")
    test_set = _primary_test_set(card, config)
    overall = card[(card["test_set"] == test_set) & (card["question_type"] == ALL_TYPES)].iloc[0]
    row: dict[str, Any] = {f"card_{c}": float(overall[c]) for c in CARD_COLUMNS}
    row["card_fragile_types"] = ", ".join(f"{q} {n}" for q, n in fragile_types(card, test_set).items())
    checks = {name: ok for name, ok, _ in card_checks(card, test_set)}
    row.update({f"meets_{name}": math.nan if checks[name] is None else int(checks[name]) for name in CARD_CHECKS})
    row["card_held"] = sum(ok is True for ok in checks.values())
    return row


def collect(results: Path, config: dict) -> dict:
    """A finished study's numbers (percent), on its primary test set, its base card's included."""
    import pandas as pd

    from nsr.coverage import fragile_coverage

    passk, entropy, n = load(results, {r: r for r in ROLES})
    forms = pd.read_csv(results / "answer_forms.csv")
    forms = forms[(forms["test_set"] == _primary_test_set(forms, config)) & (forms["question_type"] == "all")]
    malformed = dict(zip(forms["method"], 100 * forms["malformed"]))
    comparison = pd.read_csv(results / "comparison_pass_at_k.csv")
    comparison = comparison[(comparison["test_set"] == _primary_test_set(comparison, config)) & (comparison["k"] == n)]
    diff = comparison.set_index("method")
    row: dict[str, Any] = {"n": n}
    for role in ROLES:
        row[f"{role}_pass1"] = passk[role][1]
        row[f"{role}_passn"] = passk[role][n]
        row[f"{role}_malformed"] = malformed.get(role, math.nan)
    for role in TRAINED:
        row[f"{role}_entropy"] = entropy[role]
        for column, name in (("diff_vs_base", "dpassn"), ("diff_ci_low", "dpassn_lo"), ("diff_ci_high", "dpassn_hi")):
            value = diff.loc[role, column] if role in diff.index and column in diff.columns else math.nan
            row[f"{role}_{name}"] = 100 * float(value)
    row["psr_minus_nsr_passn"] = passk["psr"][n] - passk["nsr"][n]
    # the problems the base (nearly) never solves: where the methods' coverage differs most
    coverage = pd.read_csv(results / "coverage_by_difficulty.csv")
    row["fragile_problems"], fragile_solved = fragile_coverage(coverage, _primary_test_set(coverage, config))
    for role in ROLES:
        row[f"{role}_fragile_solved"] = fragile_solved.get(role, math.nan)
    checks = criteria(passk, entropy, n)
    row.update({name: int(ok) for name, ok, _ in checks})
    row["criteria_held"] = sum(ok for _, ok, _ in checks)
    row["details"] = " | ".join(f"{name}: {detail}" for name, _, detail in checks)
    return {**row, **collect_card(results, config)}


COLLECT = {"study": collect, "base": collect_card}


def _stored_row(run: Run) -> dict | None:
    path = run.workdir / ROW_FILE
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    return stored["row"] if stored.get("config") == run.config else None


def _nothing_to_do(run: Run) -> bool:
    dry = snakemake(run.workdir / "config.yaml", run.workdir, 1, "--dry-run", *STAGE_TARGETS[run.stage])
    return dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr


# What the subset and the base depend on: runs equal here share them (a warm-start is minutes).
_BASE_SECTIONS = ("data", "base", "numerics")
_BASE_OUTPUTS = ("results/data", "results/models/base")


def _base_key(config: dict) -> str:
    return json.dumps({k: config.get(k) for k in _BASE_SECTIONS}, sort_keys=True, default=str)


def reuse_base(run: Run, runs: Iterable[Run], log=print) -> bool:
    """Copy the subset and the base model of a finished run with the same data/base settings into
    ``run`` (mtimes kept, so Snakemake takes them as up to date and trains from them at once)."""
    if (run.workdir / _BASE_OUTPUTS[1] / "config.json").exists():
        return False
    for other in runs:
        if other.workdir == run.workdir or _base_key(other.config) != _base_key(run.config):
            continue
        if all((other.workdir / out).is_dir() for out in _BASE_OUTPUTS) and \
                (other.workdir / _BASE_OUTPUTS[1] / "config.json").exists():
            for out in _BASE_OUTPUTS:
                target = run.workdir / out
                shutil.rmtree(target, ignore_errors=True)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(other.workdir / out, target, copy_function=shutil.copy2)
            log(f"{run.variant}/{run.seed_set}: subset and base copied from {other.variant}/{other.seed_set}")
            return True
    return False


def execute(run: Run, cores: str | int, log=print, runs: Iterable[Run] = ()) -> dict:
    """Run one study (unless its stored row is still current) and return its row."""
    errors = config_errors(run.config)
    if errors:
        raise InputError("config errors: " + "; ".join(errors))
    run.workdir.mkdir(parents=True, exist_ok=True)
    config_path = run.workdir / "config.yaml"
    text = yaml.safe_dump(run.config, sort_keys=False)
    if not config_path.exists() or config_path.read_text() != text:
        config_path.write_text(text)
    stored = _stored_row(run)
    if stored is not None and _nothing_to_do(run):
        log(f"{run.variant}/{run.seed_set}: up to date ({stored['wall_s']:.0f} s when run)")
        return stored
    log(f"{run.variant}/{run.seed_set}: running in {run.workdir}")
    started = time.monotonic()
    reuse_base(run, runs, log)
    # --rerun-incomplete: a screen killed mid-run resumes its half-written jobs on the next call.
    result = snakemake(config_path, run.workdir, cores, "-q", "--rerun-incomplete", *STAGE_TARGETS[run.stage])
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"snakemake failed (logs in {run.workdir / 'logs'})\n"
                           + (result.stdout + result.stderr)[-3000:])
    row = {"variant": run.variant, "seed_set": run.seed_set, "seed_sets": 1,
           "overrides": overrides_text(run.overrides), **COLLECT[run.stage](run.workdir / "results", run.config),
           "wall_s": round(wall, 1)}
    with atomic_path(run.workdir / ROW_FILE) as tmp:
        tmp.write_text(json.dumps({"config": run.config, "row": row}, indent=1))
    held = (f"{row['criteria_held']} of 5 criteria hold" if run.stage == "study" else
            f"the card meets {row['card_held']} of {len(CARD_CHECKS)} targets")
    log(f"{run.variant}/{run.seed_set}: done in {wall:.0f} s, {held}")
    return row
