"""The base card (nsr.base_card) against counts made by hand and by an independent recount."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from nsr.base_card import CARD_TARGETS, base_card, card_checks, markdown, mode_right
from nsr.io import InputError, write_parquet

TABLES = {"p-max": ({"A": 10, "B": 50, "C": 30}, "max", "B"),
          "p-min": ({"A": 10, "B": 50, "C": 30}, "min", "A"),
          "p-rank": ({"A": 10, "B": 50, "C": 30}, "rank", "BCA"),
          "p-hard": ({"A": 10, "B": 50, "C": 30, "D": 45}, "rank", "BDCA")}
# Two seeds x 8 samples per problem (answer texts; "BB" and "x" are malformed for their questions).
ANSWERS = {
    "p-max": (["B"] * 5 + ["C"] * 3, ["B"] * 6 + ["A", "C"]),        # mode right, p = 11/16
    "p-min": (["A"] * 3 + ["C"] * 4 + ["x"], ["A"] * 5 + ["C"] * 3),  # wrong mode in seed 0, right pooled (8 / 7)
    "p-rank": (["BCA"] * 2 + ["CBA"] * 6, ["BCA"] * 6 + ["CBA"] * 2),  # tie 8 / 8 -> counts 1/2
    "p-hard": (["BCDA"] * 8, ["BCDA"] * 7 + ["BB"]),                  # never right: fragile, unsolved
}


def problems_frame() -> pd.DataFrame:
    return pd.DataFrame([{"problem_id": pid, "prompt": f"{pid}?", "answer": answer, "question_type": qtype,
                          "table": json.dumps({"values": table, "a": None, "b": None})}
                         for pid, (table, qtype, answer) in TABLES.items()])


def write_study(root: Path, answers=ANSWERS) -> tuple[Path, list[Path]]:
    root.mkdir(parents=True, exist_ok=True)
    problems = root / "test.parquet"
    write_parquet(problems, problems_frame())
    paths = []
    for seed in range(2):
        rows = [{"problem_id": pid, "sample_idx": i, "completion": text, "correct": text == TABLES[pid][2]}
                for pid, runs in answers.items() for i, text in enumerate(runs[seed])]
        path = root / "base" / f"seed{seed}.parquet"
        path.parent.mkdir(exist_ok=True)
        write_parquet(path, pd.DataFrame(rows))
        paths.append(path)
    return problems, paths


def recount(answers=ANSWERS) -> dict:
    """The card's `all` row counted independently, with plain loops over the answer lists."""
    pass1 = mode = fragile5 = fragile1 = solved = malformed = samples = distinct = pass_n = 0.0
    for pid, runs in answers.items():
        table, qtype, right = TABLES[pid]
        pooled = [a for run in runs for a in run]
        c = sum(a == right for a in pooled)
        pass1 += c / len(pooled)
        counts = Counter(pooled)
        top = [a for a, k in counts.items() if k == max(counts.values())]
        mode += sum(a == right for a in top) / len(top)
        fragile5 += c / len(pooled) <= 0.05
        fragile1 += c / len(pooled) <= 0.01
        solved += c > 0
        well_formed = (lambda a: a in table) if qtype in ("max", "min") else (lambda a: sorted(a) == sorted(table))
        malformed += sum(not well_formed(a) for a in pooled)
        samples += len(pooled)
        distinct += sum(len(set(run)) for run in runs) / len(runs)
        pass_n += sum(right in run for run in runs) / len(runs)
    p = len(answers)
    return {"pass1": 100 * pass1 / p, "mode_right": 100 * mode / p, "headroom": 100 * (mode - pass1) / p,
            "fragile_5": 100 * fragile5 / p, "fragile_1": 100 * fragile1 / p, "solved": 100 * solved / p,
            "malformed": 100 * malformed / samples, "distinct_answers": distinct / p, "pass_at_n": 100 * pass_n / p}


def test_mode_right_counts_ties_as_the_right_share_of_the_tied_answers():
    assert mode_right(["A", "A", "B"], [True, True, False]) == 1.0
    assert mode_right(["A", "B", "B"], [True, False, False]) == 0.0
    assert mode_right(["A", "B"], [True, False]) == 0.5
    assert mode_right(["A", "B", "C", "C", "B"], [True, False, False, False, False]) == 0.0
    assert mode_right(["A", "B", "C"], [True, False, False]) == pytest.approx(1 / 3)


def test_card_equals_an_independent_count(tmp_path):
    problems, paths = write_study(tmp_path)
    card = base_card([("mix", problems, paths)])
    overall = card[card["question_type"] == "all"].iloc[0]
    expected = recount()
    for column, value in expected.items():
        assert overall[column] == pytest.approx(value), column
    assert overall["problems"] == 4 and overall["n"] == 8
    # per question type: the two rank problems (one tied mode, one never right)
    rank = card[card["question_type"] == "rank"].iloc[0]
    assert rank["problems"] == 2 and rank["mode_right"] == pytest.approx(25.0)
    assert rank["fragile_5"] == pytest.approx(50.0) and rank["solved"] == pytest.approx(50.0)
    assert list(card["question_type"]) == ["max", "min", "rank", "all"]


def test_checks_name_what_the_card_misses(tmp_path):
    problems, paths = write_study(tmp_path)
    card = base_card([("mix", problems, paths)])
    checks = {name: (ok, detail) for name, ok, detail in card_checks(card)}
    assert set(checks) == {"mode", "headroom", "fragile", "spread", "malformed", "room"}
    assert recount()["mode_right"] == pytest.approx(62.5) and 62.5 >= CARD_TARGETS["mode_right"]
    assert checks["fragile"][0] is True  # 1 of 4 problems never right
    assert checks["spread"][0] is False and "rank 1" in checks["spread"][1]  # all fragile problems are rankings
    assert checks["mode"][0] is True and checks["headroom"][0] is True  # 62.5 and 62.5 - 42.2
    assert checks["room"][0] is True  # Pass@1 42.2, Pass@8 75
    text = markdown(card)
    assert "| all | 4 |" in text and "targets met" in text


def test_fragile_problems_of_two_types_spread(tmp_path):
    answers = {**ANSWERS, "p-max": (["C"] * 8, ["C"] * 8)}  # max never right either: max 1, rank 1
    problems, paths = write_study(tmp_path, answers)
    spread = {name: ok for name, ok, _ in card_checks(base_card([("mix", problems, paths)]))}["spread"]
    assert spread is True


def test_bad_samples_files_are_named(tmp_path):
    problems, paths = write_study(tmp_path)
    short = tmp_path / "short" / "seed9.parquet"
    short.parent.mkdir()
    frame = pd.read_parquet(paths[0])
    write_parquet(short, frame[frame["problem_id"] != "p-hard"])
    with pytest.raises(InputError, match=f"samples file {short}: no samples of 1 problem"):
        base_card([("mix", problems, [paths[0], short])])
    fewer = tmp_path / "fewer" / "seed8.parquet"
    fewer.parent.mkdir()
    write_parquet(fewer, frame[frame["sample_idx"] < 4])
    with pytest.raises(InputError, match="different numbers of samples"):
        base_card([("mix", problems, [paths[0], fewer])])


def test_cli_writes_csv_and_markdown(tmp_path):
    problems, paths = write_study(tmp_path)
    out = tmp_path / "results" / "base_card.csv"
    result = subprocess.run([sys.executable, "-m", "nsr", "card", "--set", "mix", str(problems), *map(str, paths),
                             "--output", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    card = pd.read_csv(out)
    assert card["test_set"].eq("mix").all() and (out.with_suffix(".md")).read_text().startswith("**mix**")
    bad = subprocess.run([sys.executable, "-m", "nsr", "card", "--set", "mix", str(problems), *map(str, paths),
                          "--output", str(tmp_path / "card.png")], capture_output=True, text=True)
    assert bad.returncode == 2 and "--output" in bad.stderr
