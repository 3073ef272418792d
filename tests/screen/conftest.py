"""Fixtures of the nsr.screen tests: the tiny grid and a writer of grid files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

# Two variants x two seed sets of the tiny study (tests/configs/tiny.yaml), without its extra test
# set and NSR's longer run, so each of the four studies is as small as the DAG allows.
TINY_GRID = {
    "base_config": "tests/configs/tiny.yaml",
    "common": {"data.extra_test_sets": {}, "methods.nsr": {"objective": "nsr"}},
    "seed_sets": {
        "s7": {"data.seed": 7, "base.seed": 7, "train.seeds": [1]},
        "s8": {"data.seed": 8, "base.seed": 8, "train.seeds": [2]},
    },
    "variants": {"default": {}, "lr3e-3": {"train.learning_rate": 3.0e-3}},
}


@pytest.fixture(scope="session")
def tiny_grid() -> dict:
    return TINY_GRID


@pytest.fixture(scope="session")
def write_grid():
    """write_grid(path, grid) -> path: ``grid`` written as a grid file."""
    def write(path: Path, grid: dict) -> Path:
        path.write_text(yaml.safe_dump(grid, sort_keys=False))
        return path

    return write
