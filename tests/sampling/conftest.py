"""Fixtures of the nsr.sampling tests: prompts and a problem set (the tiny model with varied outputs and
its folder are tests/conftest.py's, shared with the rollout tests)."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def prompts():
    return ["S=57 A=92 Z=33|max?", "F=35 O=61|min?", "hello, a longer prompt than the others|2nd?", "x", "Q=1 R=2 T=3|sum?"]


@pytest.fixture()
def problems(prompts):
    return pd.DataFrame({"problem_id": [f"p{i}" for i in range(len(prompts))], "prompt": prompts, "answer": ["A", "F", "Z", "1", "6"]})
