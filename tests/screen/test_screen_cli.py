"""The screening command end to end (nsr.screen.cli, benchmarks/screen.py, over nsr.screen.execution
and nsr.screen.report): a tiny grid run, re-run and extended; a failing variant; the table alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nsr.base_card import CARD_CHECKS
from nsr.paper_shape import CRITERIA, ROLES
from nsr.io import InputError
from nsr.screen import (AGGREGATE, EXPORTED, FRAGILE_SOLVED, base_sources, columns, export_runs, load_grid,
                        reuse_base, screen)

REPO = Path(__file__).resolve().parents[2]


def screen_command(grid: Path, workdir: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    # The tiny study is a CPU study; a visible GPU would change its numbers.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    # Two studies at once on one core each keep both cores busy through each study's serial
    # stretches (warm-start, plots), and exercise --jobs-parallel.
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "screen.py"), str(grid), "--workdir", str(workdir),
                           "--output", str(output), "--cores", "1", "--jobs-parallel", "2", *extra],
                          capture_output=True, text=True, env=env, timeout=2400)


@pytest.fixture(scope="module")
def tiny_screen(tmp_path_factory, tiny_grid, write_grid):
    # End to end: one variant on both seed sets, two whole tiny studies (~25 jobs each, about 1.5 min
    # on 2 idle cores); how several variants are laid out is checked without running them
    # (test_screen_grid.py).
    tiny_run_grid = {**tiny_grid, "variants": {"lr3e-3": tiny_grid["variants"]["lr3e-3"]}}
    root = tmp_path_factory.mktemp("screen")
    grid = write_grid(root / "tiny_grid.yaml", tiny_run_grid)
    result = screen_command(grid, root / "work", root / "table")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return root, grid


@pytest.mark.slow
def test_tiny_grid_writes_every_column(tiny_screen):
    root, _ = tiny_screen
    table = pd.read_csv(root / "table.csv")
    assert list(table.columns) == columns()
    for role in ROLES:
        assert {f"{role}_pass1", f"{role}_passn", f"{role}_malformed"} <= set(table.columns)
    assert {f"{role}_entropy" for role in ROLES if role != "base"} <= set(table.columns)
    assert {"S1", "S2", "S3", "S4", "S5", "wall_s", "overrides"} <= set(table.columns)
    # one row per variant x seed set, then the variant's aggregate
    assert list(zip(table["variant"], table["seed_set"])) == [
        ("lr3e-3", "s7"), ("lr3e-3", "s8"), ("lr3e-3", AGGREGATE)]
    runs, agg = table[table["seed_set"] != AGGREGATE], table[table["seed_set"] == AGGREGATE]
    # every number of every run is there (an empty override string reads back as NaN; a fragile share
    # only where the base has fragile problems)
    assert runs.drop(columns=["overrides", "card_fragile_types", *FRAGILE_SOLVED]).notna().all().all()
    assert agg.drop(columns=["overrides", "details", "card_fragile_types", *FRAGILE_SOLVED,
                             *[c for c in table.columns if c.endswith(("_lo", "_hi"))]]).notna().all().all()
    assert runs["fragile_problems"].between(0, 4).all()
    fragile = runs.loc[runs["fragile_problems"] > 0, list(FRAGILE_SOLVED)]
    assert fragile.notna().all().all() and fragile.stack().between(0, 100).all()
    assert runs["n"].eq(8).all()
    for role in ROLES:
        p1, pn, bad = table[f"{role}_pass1"], table[f"{role}_passn"], table[f"{role}_malformed"]
        assert p1.between(0, 100).all() and pn.between(0, 100).all() and bad.between(0, 100).all()
        assert (p1 <= pn + 1e-9).all(), role
    for role in ("grpo", "psr", "nsr", "w-reinforce"):
        assert runs[f"{role}_entropy"].gt(0).all()
        assert (runs[f"{role}_dpassn_lo"] <= runs[f"{role}_dpassn"] + 1e-9).all()
        assert (runs[f"{role}_dpassn"] <= runs[f"{role}_dpassn_hi"] + 1e-9).all()
        assert (runs[f"{role}_dpassn"] - (runs[f"{role}_passn"] - runs["base_passn"])).abs().lt(1e-3).all()
    for criterion in CRITERIA:
        assert set(runs[criterion]) <= {0, 1}                     # holds / fails in one seed set
        assert agg[criterion].between(0, 2).all()                 # in how many of the 2 seed sets
    assert (runs["criteria_held"] == runs[list(CRITERIA)].sum(axis=1)).all()
    assert runs["details"].str.contains("S1: Pass@1 base").all()
    assert runs["wall_s"].gt(0).all()
    assert table.loc[table["variant"] == "lr3e-3", "overrides"].eq("train.learning_rate=0.003").all()
    # the aggregate is the mean over seed sets (the cost: the sum)
    variant = table[table["variant"] == "lr3e-3"].set_index("seed_set")
    assert variant.loc[AGGREGATE, "psr_pass1"] == pytest.approx(variant.loc[["s7", "s8"], "psr_pass1"].mean(),
                                                                 abs=1e-3)
    assert variant.loc[AGGREGATE, "wall_s"] == pytest.approx(variant.loc[["s7", "s8"], "wall_s"].sum(), rel=1e-3)
    # the numbers are the study's own
    results = root / "work" / "lr3e-3" / "s7" / "results"
    psr = json.loads((results / "pass_at_k" / "psr" / "all_seeds.json").read_text())
    assert variant.loc["s7", "psr_pass1"] == pytest.approx(100 * psr["pass_at_k"]["1"], abs=1e-3)
    markdown = (root / "table.md").read_text()
    assert markdown.count("| lr3e-3 |") == 1
    assert "Not in the table" not in markdown


@pytest.mark.slow
def test_rerun_reuses_rows_and_an_appended_variant_extends_the_table(tiny_screen, write_grid):
    root, grid_path = tiny_screen
    before = pd.read_csv(root / "table.csv")
    grid = yaml.safe_load(grid_path.read_text())
    grid["variants"]["lr1e-2"] = {"train.learning_rate": 1.0e-2}
    write_grid(grid_path, grid)
    # Only the old variant: nothing to do, so its rows (and wall times) come back as they were;
    # the new one is listed as not run.
    result = screen_command(grid_path, root / "work", root / "table", "--only", "lr3e-3")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("up to date") == 2
    after = pd.read_csv(root / "table.csv")
    pd.testing.assert_frame_equal(before, after)
    assert "lr1e-2/s7: not run yet" in (root / "table.md").read_text()
    assert not (root / "work" / "lr1e-2").exists()


@pytest.mark.slow
def test_export_copies_a_finished_runs_evidence_next_to_the_table(tiny_screen):
    root, grid_path = tiny_screen
    result = screen_command(grid_path, root / "work", root / "table", "--table-only", "--export", "lr3e-3")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for seed_set in ("s7", "s8"):
        results, kept = root / "work" / "lr3e-3" / seed_set / "results", root / "table" / "lr3e-3" / seed_set
        names = sorted(path.name for path in kept.iterdir())
        assert names == sorted(EXPORTED)  # a whole study has every one of them
        for name in names:
            assert (kept / name).read_bytes() == (results / name).read_bytes(), name


def test_export_refuses_an_unknown_or_unfinished_variant(tmp_path, tiny_grid, write_grid):
    grid, runs = load_grid(write_grid(tmp_path / "g.yaml", tiny_grid), tmp_path / "work")
    with pytest.raises(InputError, match=r"\['nope'\] are not variants"):
        export_runs(runs, ["nope"], tmp_path / "out")
    with pytest.raises(InputError, match=r"'default/s7', 'default/s8'\] have no current result"):
        export_runs(runs, ["default"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_stage_0_grid_of_bases_writes_their_cards_and_a_study_grid_reuses_its_bases(tmp_path, tiny_grid, write_grid):
    """A `stage: base` grid runs no RL: each run's row is its base card; a study grid naming its workdir
    as `bases_from` starts from those bases (copied, not warm-started again)."""
    bases = {**tiny_grid, "stage": "base", "variants": {"default": {}}}
    result = screen_command(write_grid(tmp_path / "bases.yaml", bases), tmp_path / "bases", tmp_path / "bases_table")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    table = pd.read_csv(tmp_path / "bases_table.csv")
    assert list(table.columns) == columns("base")
    run = tmp_path / "bases" / "default" / "s7"
    assert not (run / "results" / "models" / "psr").exists()  # no RL in stage 0
    card = pd.read_csv(run / "results" / "base_card.csv")
    overall = card[(card["test_set"] == "mix") & (card["question_type"] == "all")].iloc[0]
    row = table[table["seed_set"] == "s7"].iloc[0]
    assert row["card_mode_right"] == pytest.approx(overall["mode_right"], abs=1e-4)
    assert row["card_pass1"] == pytest.approx(overall["pass1"], abs=1e-4)
    assert row["card_held"] == sum(row[f"meets_{name}"] == 1 for name in CARD_CHECKS)
    assert "| default |" in (tmp_path / "bases_table.md").read_text()
    # a study grid on the same data and base settings: its runs copy the stage-0 subset and base
    study = {**tiny_grid, "variants": {"default": {}}, "bases_from": str(tmp_path / "bases")}
    grid, runs = load_grid(write_grid(tmp_path / "study.yaml", study), tmp_path / "study")
    for target in runs:
        target.workdir.mkdir(parents=True)
        assert reuse_base(target, base_sources(grid, tmp_path / "study.yaml"), log=lambda *_: None)
        assert (target.workdir / "results" / "models" / "base" / "config.json").exists()


def test_a_failing_variant_does_not_stop_the_grid(tmp_path, tiny_grid, write_grid):
    """A variant the study's checks reject (e.g. a misspelled key) is listed, not run."""
    grid = {**tiny_grid, "variants": {"typo": {"train.learning_rat": 1.0e-3}}}
    result = screen_command(write_grid(tmp_path / "g.yaml", grid), tmp_path / "work", tmp_path / "table")
    assert result.returncode == 1
    markdown = (tmp_path / "table.md").read_text()
    assert "typo/s7: config errors: train.learning_rat: unknown key (did you mean learning_rate?)" in markdown
    assert pd.read_csv(tmp_path / "table.csv").empty and list(pd.read_csv(tmp_path / "table.csv").columns) == columns()


def test_table_only_runs_nothing_and_lists_every_run(tmp_path, tiny_grid, write_grid):
    grid = write_grid(tmp_path / "g.yaml", tiny_grid)
    frame, missing, failed = screen(grid, tmp_path / "work", tmp_path / "table", run=False, log=lambda *_: None)
    assert frame.empty and not failed and not (tmp_path / "work").exists()
    assert set(missing) == {"default/s7", "default/s8", "lr3e-3/s7", "lr3e-3/s8"}
    assert "default/s7: not run yet" in (tmp_path / "table.md").read_text()
