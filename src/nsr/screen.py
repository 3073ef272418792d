"""Screen config variants of the study: a grid of reduced studies, one table row per variant.

A grid file (YAML, e.g. benchmarks/grids/issue16.yaml) names the runs:

    base_config: config/config.yaml      # optional; relative to the repository
    common:                              # dotted overrides for every run (reduced sizes)
      data.test_size: 100
    seed_sets:                           # name -> overrides; every variant runs on each
      s2025: {data.seed: 2025, base.seed: 2025, train.seeds: [2025, 2026]}
      s7: {data.seed: 7, base.seed: 7, train.seeds: [11, 12]}
    variants:                            # name -> overrides
      default: {}
      lr5e-5: {train.learning_rate: 5.0e-5}
    confirm:                             # optional stage 2: chosen variants on seed sets new to the grid
      variants: [lr5e-5]
      seed_sets: {s11: {data.seed: 11, base.seed: 11, train.seeds: [21, 22]}}

A key is a dotted config path (``train.learning_rate``), a value any YAML value, the syntax of
``benchmarks/embedded_variant.py --set``. Each run's config is base config + common + seed set +
variant, in that order, with the methods base, grpo, psr, nsr and w-reinforce (S1-S5 need all
five); it is written to WORKDIR/<variant>/<seed set>/config.yaml and the whole study runs there
(``snakemake -s REPO/Snakefile --directory ...``). Its row (screen_row.json next to the config)
is reused while the config is unchanged and a dry run finds nothing to do, so re-running the
grid only runs what is new or changed, and keeps the wall time of the run that did the work.

The table (``<output>.csv`` and ``.md``) has one row per variant and seed set with its results,
plus one row per variant (seed_set ``all``) aggregating them; columns: docs/screening.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from nsr.io import InputError, atomic_path
from nsr.paper_shape import CRITERIA, ROLES, criteria, load
from nsr.study_config import WORKFLOW_DIR, config_errors

REPO = WORKFLOW_DIR
DEFAULT_CONFIG = REPO / "config" / "config.yaml"
TRAINED = tuple(r for r in ROLES if r != "base")
AGGREGATE = "all"  # seed_set of a variant's aggregate row
FRAGILE_SOLVED = tuple(f"{role}_fragile_solved" for role in ROLES)
ROW_FILE = "screen_row.json"


# --- configs -----------------------------------------------------------------------------

def set_dotted(config: dict, key: str, value: Any) -> None:
    """config[a][b][c] = value for key "a.b.c", creating mappings on the way."""
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InputError(f"{key}: {part!r} is not a mapping in the config")
    node[last] = value


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """"dotted.key=YAML value" -> (key, value)."""
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise InputError(f"--set {assignment!r}: expected dotted.key=value")
    return key, yaml.safe_load(value)


def apply_override(config: dict, assignment: str) -> None:
    set_dotted(config, *parse_assignment(assignment))


def study_config(overrides: Iterable[tuple[str, Any]], base_config: Path = DEFAULT_CONFIG,
                 methods: Iterable[str] | None = None) -> dict:
    """``base_config`` with ``overrides`` (key, value) applied in order; only ``methods`` when given."""
    config = yaml.safe_load(Path(base_config).read_text())
    for key, value in overrides:
        set_dotted(config, key, value)
    if methods is not None:
        methods = list(methods)
        unknown = sorted(set(methods) - set(config["methods"]))
        if unknown:
            raise InputError(f"methods {unknown} not in the config's methods {list(config['methods'])}")
        config["methods"] = {m: config["methods"][m] for m in methods}
    return config


def overrides_text(overrides: dict) -> str:
    """One line: ``key=value; key=value`` with values as YAML flow text (as --set takes them)."""
    def flow(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()

    return "; ".join(f"{key}={flow(value)}" for key, value in overrides.items())


def snakemake(config_path: Path, workdir: Path, cores: str | int, *extra: str,
              capture: bool = True) -> subprocess.CompletedProcess:
    """The study of ``config_path`` in ``workdir`` (the default target); its output captured, or
    shown as it comes with ``capture=False``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", str(cores),
                           "--configfile", str(config_path), "--directory", str(workdir), *extra],
                          capture_output=capture, text=True, env=env)


# --- the grid ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    variant: str
    seed_set: str
    overrides: dict       # the variant's own
    config: dict          # base config + common + seed set + variant
    workdir: Path


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a mapping of dotted.key: value, got {type(value).__name__}")
    return value


def load_grid(path: Path, workdir: Path) -> tuple[dict, list[Run]]:
    """(the grid file's content, every variant x seed set run in grid order)."""
    grid = yaml.safe_load(Path(path).read_text()) or {}
    unknown = sorted(set(grid) - {"base_config", "common", "seed_sets", "variants", "confirm"})
    if unknown:
        raise InputError(f"{path}: unknown top-level key(s) {unknown}")
    base_config = REPO / grid.get("base_config", "config/config.yaml")
    common = _mapping(grid.get("common"), f"{path}: common")
    seed_sets = _mapping(grid.get("seed_sets"), f"{path}: seed_sets")
    variants = _mapping(grid.get("variants"), f"{path}: variants")
    if len(seed_sets) < 2:
        raise InputError(f"{path}: seed_sets: give at least 2 (data/base/training seeds), so an effect is "
                         "seen on more than one draw")
    if not variants:
        raise InputError(f"{path}: variants: none")
    for name in [*seed_sets, *variants]:
        if not str(name) or "/" in str(name) or str(name) == AGGREGATE or str(name).startswith("."):
            raise InputError(f"{path}: {name!r} cannot name a variant or seed set (it is a folder name)")
    plan = [(variant, seed_set) for variant in variants for seed_set in seed_sets]
    confirm = _mapping(grid.get("confirm"), f"{path}: confirm")
    if confirm:  # stage 2: chosen variants on seed sets never used while choosing them
        extra_sets = _mapping(confirm.get("seed_sets"), f"{path}: confirm.seed_sets")
        chosen = confirm.get("variants") or []
        if set(confirm) - {"seed_sets", "variants"} or not extra_sets or not isinstance(chosen, list) or not chosen:
            raise InputError(f"{path}: confirm: give seed_sets (name -> overrides) and variants (a list of names)")
        unknown = sorted(set(chosen) - set(variants))
        if unknown:
            raise InputError(f"{path}: confirm.variants: {unknown} are not variants of the grid")
        reused = sorted(set(extra_sets) & set(seed_sets))
        if reused:
            raise InputError(f"{path}: confirm.seed_sets {reused} are stage-1 seed sets: confirm on new ones")
        seed_sets = {**seed_sets, **extra_sets}
        plan += [(variant, seed_set) for variant in chosen for seed_set in extra_sets]
    for name in seed_sets:
        if not str(name) or "/" in str(name) or str(name) == AGGREGATE or str(name).startswith("."):
            raise InputError(f"{path}: {name!r} cannot name a seed set (it is a folder name)")
    runs = []
    for variant, seed_set in plan:
        overrides = _mapping(variants[variant], f"{path}: variants.{variant}")
        seeds = _mapping(seed_sets[seed_set], f"{path}: seed_sets.{seed_set}")
        items = [*common.items(), *seeds.items(), *overrides.items()]
        config = study_config(items, base_config, methods=ROLES)
        runs.append(Run(str(variant), str(seed_set), overrides, config, workdir / str(variant) / str(seed_set)))
    return grid, runs


# --- one run -----------------------------------------------------------------------------

def _primary_test_set(table, config: dict) -> str:
    name = config["data"].get("test_name")
    return name if name in set(table["test_set"]) else table["test_set"].iloc[0]


def collect(results: Path, config: dict) -> dict:
    """A finished study's numbers (percent), on its primary test set."""
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
    return row


def _stored_row(run: Run) -> dict | None:
    path = run.workdir / ROW_FILE
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    return stored["row"] if stored.get("config") == run.config else None


def _nothing_to_do(run: Run) -> bool:
    dry = snakemake(run.workdir / "config.yaml", run.workdir, 1, "--dry-run")
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
    result = snakemake(config_path, run.workdir, cores, "-q", "--rerun-incomplete")
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"snakemake failed (logs in {run.workdir / 'logs'})\n"
                           + (result.stdout + result.stderr)[-3000:])
    row = {"variant": run.variant, "seed_set": run.seed_set, "seed_sets": 1,
           "overrides": overrides_text(run.overrides), **collect(run.workdir / "results", run.config),
           "wall_s": round(wall, 1)}
    with atomic_path(run.workdir / ROW_FILE) as tmp:
        tmp.write_text(json.dumps({"config": run.config, "row": row}, indent=1))
    log(f"{run.variant}/{run.seed_set}: done in {wall:.0f} s, {row['criteria_held']} of 5 criteria hold")
    return row


# --- the table ---------------------------------------------------------------------------

def columns() -> list[str]:
    cols = ["variant", "seed_set", "seed_sets", "overrides", "n"]
    for role in ROLES:
        cols += [f"{role}_pass1", f"{role}_passn", f"{role}_malformed"]
    for role in TRAINED:
        cols += [f"{role}_entropy", f"{role}_dpassn", f"{role}_dpassn_lo", f"{role}_dpassn_hi"]
    cols += ["psr_minus_nsr_passn", "fragile_problems", *FRAGILE_SOLVED]
    return [*cols, *CRITERIA, "criteria_held", "wall_s", "details"]


def aggregate(rows: list[dict]) -> dict:
    """A variant's row over its seed sets: means of the numbers, S1-S5 = in how many seed sets the
    criterion holds, wall_s = the sum (the variant's cost). CIs do not average: left empty. A
    fragile share is the mean over the seed sets that have fragile problems; a row stored before
    a column existed counts as NaN there."""
    first = rows[0]
    out = {"variant": first["variant"], "seed_set": AGGREGATE, "seed_sets": len(rows),
           "overrides": first["overrides"], "n": first["n"], "details": ""}
    for col in columns():
        if col in out:
            continue
        values = [r.get(col, math.nan) for r in rows]
        if col in FRAGILE_SOLVED:
            known = [v for v in values if not math.isnan(v)]
            out[col] = sum(known) / len(known) if known else math.nan
        elif col.endswith(("_lo", "_hi")):
            out[col] = math.nan
        elif col in CRITERIA or col == "wall_s":
            out[col] = sum(values)
        else:
            out[col] = sum(values) / len(values)
    return out


def table(rows: list[dict]):
    """Per-run rows in grid order, each variant followed by its aggregate row."""
    import pandas as pd

    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        out += [*mine, aggregate(mine)]
    return pd.DataFrame(out, columns=columns())


def _pair(row, role: str) -> str:
    return f"{row[f'{role}_pass1']:.1f} / {row[f'{role}_passn']:.1f}"


def _fragile(row) -> str:
    if math.isnan(row["fragile_problems"]):  # rows stored before the column existed
        return "–"
    shares = " / ".join("–" if math.isnan(row[f"{r}_fragile_solved"]) else f"{row[f'{r}_fragile_solved']:.0f}"
                        for r in ("base", "psr", "nsr"))
    return f"{row['fragile_problems']:.1f}: {shares}"


def markdown(frame, grid_path: Path, grid: dict, missing: dict[str, str]) -> str:
    """One line per variant (its aggregate row), most criteria holding first, then PSR furthest
    below NSR at k = n (the paper's large-k trade-off)."""
    agg = frame[frame["seed_set"] == AGGREGATE].sort_values(["criteria_held", "psr_minus_nsr_passn"],
                                                              ascending=[False, True])
    seed_sets, confirm = grid.get("seed_sets", {}), grid.get("confirm")
    n = int(agg["n"].iloc[0]) if len(agg) else "n"
    lines = [
        f"# Screen: {grid_path.name}", "",
        f"Config: {grid.get('base_config', 'config/config.yaml')} + common "
        f"`{overrides_text(grid.get('common') or {})}` + seed set + variant. "
        f"Seed sets: " + "; ".join(f"{name} `{overrides_text(o)}`" for name, o in seed_sets.items()) + "."
        + (f" Stage 2 (`confirm`): {', '.join(confirm['variants'])} also on "
           + "; ".join(f"{name} `{overrides_text(o)}`" for name, o in confirm["seed_sets"].items()) + "."
           if confirm else ""),
        "",
        f"Pass@1 / Pass@{n} in %, means over training seeds and then seed sets; S1-S5 (nsr.paper_shape): "
        "in how many seed sets the criterion holds; psr - nsr: Pass@n gap (the paper: <= -2); "
        "malformed: % of NSR's samples; entropy: end held-out token entropy; fragile: problems with base "
        "success rate <= 5% (mean over seed sets) and % of them solved at least once in n by base / psr / nsr; "
        "wall: all seed sets. "
        "Every column per seed set: the CSV next to this file.", "",
        f"| variant | overrides | criteria held (mean) | S1 | S2 | S3 | S4 | S5 | base | grpo | psr | nsr | w-reinforce "
        f"| psr - nsr @{n} | nsr malformed | entropy psr / nsr | fragile problems: % solved base / psr / nsr | wall |",
        "|---|---|---:|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, row in agg.iterrows():
        m = int(row["seed_sets"])
        overrides = f"`{row['overrides']}`" if isinstance(row["overrides"], str) and row["overrides"] else "(none)"
        lines.append(
            f"| {row['variant']} | {overrides} | {row['criteria_held']:.1f} | "
            + " | ".join(f"{int(row[c])}/{m}" for c in CRITERIA) + " | "
            + " | ".join(_pair(row, r) for r in ROLES)
            + f" | {row['psr_minus_nsr_passn']:+.1f} | {row['nsr_malformed']:.1f} | "
            f"{row['psr_entropy']:.3f} / {row['nsr_entropy']:.3f} | {_fragile(row)} | {row['wall_s'] / 60:.0f} min |")
    if missing:
        lines += ["", "Not in the table:", ""] + [f"- {name}: {why}" for name, why in missing.items()]
    return "\n".join(lines) + "\n"


# --- the command -------------------------------------------------------------------------

def screen(grid_path: Path, workdir: Path, output: Path, cores: str | int = "all", only: Iterable[str] = (),
           jobs_parallel: int = 1, log=print, run: bool = True) -> tuple[Any, dict[str, str], dict[str, str]]:
    """Run the grid's (selected) variants, write ``output``.csv/.md over every variant with a
    current result, and return (the table, {run: why it is not in the table}, {run: why it failed})."""
    grid, runs = load_grid(grid_path, workdir)
    only = set(only)
    unknown = sorted(only - {r.variant for r in runs})
    if unknown:
        raise InputError(f"--only: {unknown} not in {grid_path}'s variants {sorted({r.variant for r in runs})}")
    selected = [i for i, r in enumerate(runs) if run and (not only or r.variant in only)]
    failed: dict[str, str] = {}

    def attempt(index: int) -> dict | None:
        run = runs[index]
        try:
            return execute(run, cores, log, runs)
        except (InputError, RuntimeError) as error:
            # One broken variant (a key another branch adds, a failed job) must not stop the grid.
            failed[f"{run.variant}/{run.seed_set}"] = str(error).splitlines()[0]
            log(f"{run.variant}/{run.seed_set}: {error}")
            return None

    with ThreadPoolExecutor(max_workers=max(1, jobs_parallel)) as pool:
        done = dict(zip(selected, pool.map(attempt, selected)))
    rows, missing = [], dict(failed)
    for index, run in enumerate(runs):
        row = done[index] if index in done else _stored_row(run)
        if row is not None:
            rows.append(row)
        elif index not in done:
            missing[f"{run.variant}/{run.seed_set}"] = "not run yet (or its config changed since)"
    # A variant is only compared over all its seed sets: a partial one would bias the aggregate.
    complete = {v for v in {r.variant for r in runs}
                if sum(row["variant"] == v for row in rows) == sum(r.variant == v for r in runs)}
    frame = table([r for r in rows if r["variant"] in complete])
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output.with_suffix(".csv")) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(output.with_suffix(".md")) as tmp:
        tmp.write_text(markdown(frame, Path(grid_path), grid, missing))
    return frame, missing, failed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path, help="grid file (YAML), e.g. benchmarks/grids/issue16.yaml")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the studies run (default: benchmarks/out/screen/<grid name>)")
    parser.add_argument("--output", type=Path, default=None,
                        help="table path without suffix; .csv and .md are written "
                             "(default: docs/screening/<grid name>)")
    parser.add_argument("--only", nargs="+", default=[], metavar="VARIANT", help="run only these variants")
    parser.add_argument("--cores", default="all", help="snakemake --cores of each study")
    parser.add_argument("--jobs-parallel", type=int, default=1, help="studies run at once (each with --cores)")
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: write the table from the stored rows (screen_row.json) whose config "
                             "is the grid's, even if code changed since they ran")
    args = parser.parse_args(argv)
    stem = args.grid.stem
    workdir = (args.workdir or REPO / "benchmarks" / "out" / "screen" / stem).resolve()
    output = args.output or REPO / "docs" / "screening" / stem
    try:
        _, _, failed = screen(args.grid, workdir, output, args.cores, args.only, args.jobs_parallel,
                              run=not args.table_only)
    except InputError as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    print(f"wrote {output.with_suffix('.csv')} and {output.with_suffix('.md')}")
    print(output.with_suffix(".md").read_text())
    sys.exit(1 if failed else 0)
