"""nsr.screen.report: the table's columns and a variant's aggregate row."""

from __future__ import annotations

import math

import pytest

from nsr.screen import FRAGILE_SOLVED, aggregate, columns


def test_aggregate_fragile_shares_skip_seed_sets_without_fragile_problems():
    """A seed set whose base has no fragile problem has no share to average; a row stored before
    the fragile columns existed counts as missing, not as an error."""
    common = {"variant": "v", "overrides": "", "n": 8}
    rows = [{**common, "seed_set": "a", "fragile_problems": 0, "psr_fragile_solved": math.nan,
             "nsr_fragile_solved": math.nan},
            {**common, "seed_set": "b", "fragile_problems": 3, "psr_fragile_solved": 0.0, "nsr_fragile_solved": 100 / 3},
            {**common, "seed_set": "c", "fragile_problems": 1, "psr_fragile_solved": 100.0, "nsr_fragile_solved": 0.0}]
    out = aggregate(rows)
    assert out["fragile_problems"] == pytest.approx(4 / 3)
    assert out["psr_fragile_solved"] == pytest.approx(50) and out["nsr_fragile_solved"] == pytest.approx(50 / 3)
    assert math.isnan(out["base_fragile_solved"])  # none of the rows has it
    assert {"fragile_problems", *FRAGILE_SOLVED} <= set(columns())


def test_header_names_common_overrides_only_when_the_grid_has_them(tmp_path):
    """A full-scale grid has no `common` block: the header must not show an empty override."""
    from nsr.screen import markdown, table

    seed_sets = {"s1": {"data.seed": 1}}
    bare = markdown(table([]), tmp_path / "g.yaml", {"seed_sets": seed_sets}, {}).splitlines()[2]
    reduced = markdown(table([]), tmp_path / "g.yaml", {"common": {"data.test_size": 100}, "seed_sets": seed_sets},
                       {}).splitlines()[2]
    assert bare.startswith("Config: config/config.yaml + seed set + variant.") and "common" not in bare
    assert reduced.startswith("Config: config/config.yaml + common `data.test_size=100` + seed set + variant.")
