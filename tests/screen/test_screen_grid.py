"""nsr.screen.grid: grid files, the runs' configs and --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nsr.io import InputError
from nsr.paper_shape import ROLES
from nsr.screen import AGGREGATE, apply_override, load_grid, overrides_text, study_config

REPO = Path(__file__).resolve().parents[2]


def test_grid_runs_are_config_plus_common_plus_seed_set_plus_variant(tmp_path, tiny_grid, write_grid):
    grid = {**tiny_grid, "common": {**tiny_grid["common"], "train.learning_rate": 1.0e-4}}
    _, runs = load_grid(write_grid(tmp_path / "g.yaml", grid), tmp_path / "work")
    assert [(r.variant, r.seed_set) for r in runs] == [("default", "s7"), ("default", "s8"),
                                                        ("lr3e-3", "s7"), ("lr3e-3", "s8")]
    by_name = {(r.variant, r.seed_set): r for r in runs}
    assert by_name["default", "s7"].config["train"]["learning_rate"] == 1.0e-4      # common
    assert by_name["lr3e-3", "s8"].config["train"]["learning_rate"] == 3.0e-3       # the variant wins
    assert by_name["lr3e-3", "s8"].config["data"]["seed"] == 8
    assert by_name["lr3e-3", "s8"].config["train"]["seeds"] == [2]
    assert by_name["default", "s7"].config["data"]["extra_test_sets"] == {}
    assert list(by_name["default", "s7"].config["methods"]) == list(ROLES)
    assert by_name["lr3e-3", "s7"].workdir == tmp_path / "work" / "lr3e-3" / "s7"
    # the rest of the base config is untouched
    tiny = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    assert by_name["default", "s7"].config["sampling"] == tiny["sampling"]


def test_confirm_runs_chosen_variants_on_new_seed_sets(tmp_path, tiny_grid, write_grid):
    grid = {**tiny_grid, "confirm": {"variants": ["lr3e-3"],
                                     "seed_sets": {"s9": {"data.seed": 9, "base.seed": 9, "train.seeds": [3]}}}}
    _, runs = load_grid(write_grid(tmp_path / "g.yaml", grid), tmp_path / "work")
    assert [(r.variant, r.seed_set) for r in runs] == [("default", "s7"), ("default", "s8"), ("lr3e-3", "s7"),
                                                        ("lr3e-3", "s8"), ("lr3e-3", "s9")]
    s9 = runs[-1].config
    assert (s9["data"]["seed"], s9["train"]["seeds"], s9["train"]["learning_rate"]) == (9, [3], 3.0e-3)
    for confirm, message in [({"variants": ["lr1"], "seed_sets": {"s9": {}}}, "not variants"),
                             ({"variants": ["lr3e-3"], "seed_sets": {"s7": {}}}, "stage-1 seed sets"),
                             ({"variants": ["lr3e-3"]}, "give seed_sets")]:
        with pytest.raises(InputError, match=message):
            load_grid(write_grid(tmp_path / "g.yaml", {**tiny_grid, "confirm": confirm}), tmp_path)


def test_grid_needs_two_seed_sets_and_known_keys(tmp_path, tiny_grid, write_grid):
    one_set = {**tiny_grid, "seed_sets": {"s7": tiny_grid["seed_sets"]["s7"]}}
    with pytest.raises(InputError, match="at least 2"):
        load_grid(write_grid(tmp_path / "g.yaml", one_set), tmp_path)
    with pytest.raises(InputError, match="unknown top-level"):
        load_grid(write_grid(tmp_path / "g.yaml", {**tiny_grid, "variant": {}}), tmp_path)
    with pytest.raises(InputError, match="cannot name"):
        load_grid(write_grid(tmp_path / "g.yaml", {**tiny_grid, "variants": {AGGREGATE: {}}}), tmp_path)


def test_anchors_are_merged_into_variants_and_a_base_stage_has_only_the_base_method(tmp_path, tiny_grid):
    text = yaml.safe_dump({k: v for k, v in tiny_grid.items() if k != "variants"}, sort_keys=False) + """
stage: base
anchors:
  slow: &slow {base.warmstart.steps: 30, base.warmstart.learning_rate: 1.0e-3}
variants:
  slow-lr: {<<: *slow, train.learning_rate: 3.0e-3}
  slow-steps: {<<: *slow, base.warmstart.steps: 40}
"""
    (tmp_path / "g.yaml").write_text(text)
    grid, runs = load_grid(tmp_path / "g.yaml", tmp_path / "work")
    by_name = {(r.variant, r.seed_set): r for r in runs}
    assert by_name["slow-lr", "s7"].config["base"]["warmstart"]["steps"] == 30
    assert by_name["slow-lr", "s7"].config["train"]["learning_rate"] == 3.0e-3
    assert by_name["slow-steps", "s8"].config["base"]["warmstart"]["steps"] == 40  # the variant's own key wins
    assert {r.stage for r in runs} == {"base"} and all(list(r.config["methods"]) == ["base"] for r in runs)
    assert "anchors" not in {r.variant for r in runs}
    with pytest.raises(InputError, match="stage: 'bases' is not one of study, base"):
        (tmp_path / "bad.yaml").write_text(text.replace("stage: base", "stage: bases"))
        load_grid(tmp_path / "bad.yaml", tmp_path)
    with pytest.raises(InputError, match="bases_from: no such folder"):
        from nsr.screen import base_sources
        base_sources({"bases_from": str(tmp_path / "none")}, tmp_path / "g.yaml")


def test_overrides_as_embedded_variant_takes_them():
    config = {"train": {"seeds": [1]}}
    apply_override(config, "train.seeds=[11, 12]")
    apply_override(config, "data.options.types=max:1,sum:3")
    apply_override(config, "train.trl.epsilon=0.2")
    assert config == {"train": {"seeds": [11, 12], "trl": {"epsilon": 0.2}},
                      "data": {"options": {"types": "max:1,sum:3"}}}
    with pytest.raises(InputError, match="dotted.key=value"):
        apply_override(config, "train.seeds")
    assert overrides_text({"train.seeds": [11, 12], "data.options.value_range": "100,999",
                           "train.learning_rate": 5.0e-5}) == \
        "train.seeds=[11, 12]; data.options.value_range=100,999; train.learning_rate=5.0e-05"
    with pytest.raises(InputError, match="not in the config's methods"):
        study_config([], methods=["base", "ppo"])


def test_issue16_grid_builds_and_its_runnable_variants_pass_the_config_checks(tmp_path):
    """The real search's grid: every run's config is built and passes the study's checks (the
    lever (d) variants through the `train.trl` passthrough)."""
    from nsr.study_config import config_errors

    _, runs = load_grid(REPO / "benchmarks" / "grids" / "issue16.yaml", tmp_path)
    assert len({r.seed_set for r in runs}) >= 2 and len({r.variant for r in runs}) >= 6
    for run in runs:
        assert not config_errors(run.config), run.variant


def test_issue23_grid_with_its_stage_2_builds_and_every_run_passes_the_config_checks(tmp_path):
    """Issue 23's grid: stage 1 on two seed sets, its `confirm` stage on three new ones for the
    chosen variants only; every run's config passes the study's checks."""
    from nsr.study_config import config_errors

    grid, runs = load_grid(REPO / "benchmarks" / "grids" / "issue23.yaml", tmp_path)
    chosen = set(grid["confirm"]["variants"])
    stage_2 = set(grid["confirm"]["seed_sets"])
    assert stage_2.isdisjoint(grid["seed_sets"]) and len(stage_2) >= 3
    assert {r.variant for r in runs if r.seed_set in stage_2} == chosen
    for run in runs:
        assert not config_errors(run.config), (run.variant, run.seed_set)


@pytest.mark.parametrize("grid_file", sorted((REPO / "benchmarks" / "grids").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_committed_grid_builds_and_every_run_passes_the_config_checks(tmp_path, grid_file):
    """Every grid in the repository can be re-run as it is: each run's config passes the study's checks,
    and a study grid that reuses a stage-0 grid's bases copies them on the seed sets both grids have (its
    variants' data and base settings are a stage-0 variant's)."""
    from nsr.study_config import config_errors

    grid, runs = load_grid(grid_file, tmp_path)
    for run in runs:
        assert not config_errors(run.config), (run.variant, run.seed_set)
    if grid.get("bases_from"):
        stage_0 = REPO / "benchmarks" / "grids" / f"{Path(grid['bases_from']).name}.yaml"
        _, bases = load_grid(stage_0, tmp_path / "bases")
        keys = {repr({k: b.config[k] for k in ("data", "base")}) for b in bases}
        shared = [r for r in runs if r.seed_set in {b.seed_set for b in bases}]
        assert shared and all(repr({k: r.config[k] for k in ("data", "base")}) in keys for r in shared), grid_file.name
