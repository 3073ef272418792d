"""benchmarks/fragile_by_type.py against counts done by hand on a rigged results folder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("fragile_by_type", REPO / "benchmarks" / "fragile_by_type.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_samples(path: Path, answers: dict[str, list[str]], right: dict[str, str]) -> None:
    rows = [{"problem_id": pid, "sample_idx": i, "completion": a, "extracted": a, "answer": right[pid],
             "reward": float(a == right[pid]), "correct": a == right[pid]}
            for pid, sampled in answers.items() for i, a in enumerate(sampled)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)


def test_fragile_problems_by_type_match_a_hand_count(tmp_path):
    right = {"p_min": "A", "p_rank": "ABC", "p_easy": "B"}
    tables = {"p_min": {"A": 10, "B": 20, "C": 30, "D": 40}, "p_rank": {"A": 30, "B": 20, "C": 10},
              "p_easy": {"A": 10, "B": 50, "C": 20}}
    (tmp_path / "data").mkdir()
    pd.DataFrame({"problem_id": list(right), "question_type": ["min", "rank", "max"], "prompt": "",
                  "answer": list(right.values()), "table": [json.dumps({"values": tables[p]}) for p in right]}
                 ).to_parquet(tmp_path / "data" / "test.parquet")
    # base, two seeds of 20 = 40 samples per problem: p_min right 1 of 40 (2.5%: fragile; its most
    # frequent answer is the malformed ZZ, 20 times, so the wrong mode is the well-formed C, 19 times),
    # p_rank never right (fragile; wrong mode ACB), p_easy 30 of 40 (not fragile)
    write_samples(tmp_path / "samples" / "base" / "seed1.parquet",
                  {"p_min": ["A"] + ["C"] * 15 + ["ZZ"] * 4, "p_rank": ["ACB"] * 12 + ["BAC"] * 8,
                   "p_easy": ["B"] * 15 + ["C"] * 5}, right)
    write_samples(tmp_path / "samples" / "base" / "seed2.parquet",
                  {"p_min": ["C"] * 4 + ["ZZ"] * 16, "p_rank": ["ACB"] * 10 + ["CBA"] * 10,
                   "p_easy": ["B"] * 15 + ["C"] * 5}, right)
    # psr, one seed: p_min right twice in 20 with 16 C; p_rank all ACB
    write_samples(tmp_path / "samples" / "psr" / "seed1.parquet",
                  {"p_min": ["A", "A"] + ["C"] * 16 + ["D"] * 2, "p_rank": ["ACB"] * 20, "p_easy": ["B"] * 20}, right)
    table = load_script().fragile_table(tmp_path).set_index(["question_type", "method"])
    assert set(table.index.get_level_values(0)) == {"min", "rank", "all"}  # p_easy is not fragile
    base_min = table.loc[("min", "base")]
    assert base_min["solved"] == pytest.approx(50.0)           # seed 1 solves it, seed 2 does not
    assert base_min["success"] == pytest.approx(2.5)            # (5% + 0%) / 2
    assert base_min["wrong_mode"] == pytest.approx((75 + 20) / 2)
    psr_min, psr_rank = table.loc[("min", "psr")], table.loc[("rank", "psr")]
    assert (psr_min["solved"], psr_min["success"], psr_min["wrong_mode"]) == pytest.approx((100.0, 10.0, 80.0))
    assert (psr_rank["solved"], psr_rank["success"], psr_rank["wrong_mode"]) == pytest.approx((0.0, 0.0, 100.0))
    psr_all = table.loc[("all", "psr")]
    assert psr_all["problems"] == 2 and psr_all["success"] == pytest.approx(5.0)
    assert ("min", "grpo") not in table.index                   # methods without samples are left out
