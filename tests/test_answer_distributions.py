"""nsr.answer_distributions: per fragile (and easy) problem each method's answer shares; `nsr answers`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from nsr import cli
from nsr.answer_distributions import CATEGORIES, COLUMNS, answer_distributions
from nsr.io import InputError

N = 100  # base samples per problem, all seeds pooled

# problem_id -> (question type, table, right answer)
PROBLEMS = {
    "rank1": ("rank", {"A": 3, "B": 9, "C": 5}, "BCA"),
    "zero": ("max", {"A": 3, "B": 9}, "B"),
    "five": ("max", {"A": 3, "B": 9, "C": 5}, "B"),
    "mid": ("max", {"A": 3, "B": 9, "C": 5}, "B"),
    **{pid: ("max", {"A": 3, "B": 9, "C": 5}, "B")
       for pid in ("easy_a", "easy_b", "easy_c", "easy_d", "easy_e", "easy_f")},
}
# base success of the problems that only pad the bins: mid is in (5,20%]; the (20,100%] bin's median
# is (50 + 70) / 2 = 60%, so easy_c (50) and easy_d (70) are nearest, then easy_a (80) and easy_b (40)
# tie at 20 points and easy_a wins by its id
SUCCESS = {"five": 5, "mid": 10, "easy_a": 80, "easy_b": 40, "easy_c": 50, "easy_d": 70, "easy_e": 30,
           "easy_f": 95}


def _texts(method: str, pid: str) -> list[str]:
    """The extracted answers a method samples on a problem (the completions are the answers)."""
    if pid == "rank1":
        return {
            # a frequent malformed answer (AAA) that must not count as a wrong answer; CBA and BAC tie
            # at 20 pooled (BAC first by text), though seed 1 holds only CBA and seed 2 only BAC
            "base": ["BCA"] + ["AAA"] * 35 + ["CBA"] * 20 + ["BAC"] * 20 + ["ACB"] * 12 + ["CAB"] * 8 + ["ABC"] * 4,
            "psr": ["CBA"] * 30 + ["BAC"] * 10,
            "nsr": ["BCA"] * 6 + ["ABC"] * 14 + ["CAB"] * 10 + ["ACB"] * 4 + ["BBC"] * 6,
        }[method]
    if pid == "zero":  # one well-formed wrong answer only: base_wrong_2 and _3 stay empty
        return {"base": ["A"] * 60 + ["Z"] * 40, "psr": ["A"] * 40, "nsr": ["B"] * 2 + ["A"] * 30 + ["Q"] * 8}[method]
    correct = SUCCESS[pid] * {"base": N, "psr": 40, "nsr": 40}[method] // 100
    total = {"base": N, "psr": 40, "nsr": 40}[method]
    return ["B"] * correct + ["C"] * (total - correct - 1) + ["A"]


def write_study(root: Path, problems: dict = PROBLEMS) -> tuple[Path, list[Path]]:
    """The problems parquet and samples files as the workflow lays them out: base and nsr in two seeds
    (the first and second half of each problem's answers), psr in one."""
    problems_path = root / "data" / "test.parquet"
    problems_path.parent.mkdir(parents=True)
    pd.DataFrame([{"problem_id": pid, "prompt": f"question {pid}", "answer": answer, "question_type": qtype,
                   "table": json.dumps({"values": values, "a": None, "b": None})}
                  for pid, (qtype, values, answer) in problems.items()]).to_parquet(problems_path)
    paths = []
    for method, seeds in (("base", 2), ("psr", 1), ("nsr", 2)):
        rows = {seed: [] for seed in range(1, seeds + 1)}
        for pid in problems:
            texts = _texts(method, pid)
            half = len(texts) // seeds
            for seed in rows:
                part = texts[(seed - 1) * half: seed * half if seed < seeds else len(texts)]
                rows[seed] += [{"problem_id": pid, "sample_idx": i, "completion": text,
                                "correct": text == problems[pid][2]} for i, text in enumerate(part)]
        for seed, seed_rows in rows.items():
            path = root / "samples" / method / f"seed{seed}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(seed_rows).to_parquet(path)
            paths.append(path)
    return problems_path, paths


def _well_formed(pid: str, text: str) -> bool:
    qtype, values, _ = PROBLEMS[pid]
    return sorted(text) == sorted(values) if qtype == "rank" else text in values


def independent_shares(pid: str, method: str) -> tuple[list[str], dict[str, Counter]]:
    """The base's top wrong answers and the method's category counts by plain Counters."""
    right = PROBLEMS[pid][2]
    base_wrong = Counter(t for t in _texts("base", pid) if t != right and _well_formed(pid, t))
    top = [text for text, _ in sorted(base_wrong.items(), key=lambda item: (-item[1], item[0]))[:3]]
    tally = Counter()
    for text in _texts(method, pid):
        if text == right:
            tally["right"] += 1
        elif not _well_formed(pid, text):
            tally["malformed"] += 1
        elif text in top:
            tally[f"base_wrong_{top.index(text) + 1}"] += 1
        else:
            tally["other_wrong"] += 1
    return top, tally


def test_shares_equal_an_independent_count(tmp_path):
    problems, paths = write_study(tmp_path)
    table = answer_distributions([("test", problems, paths)])
    assert list(table.columns) == list(COLUMNS)
    # every (problem, method) block: the six categories, shares summing to 1, samples to the method's
    blocks = table.groupby(["problem_id", "method"], sort=False)
    assert all(tuple(categories) == CATEGORIES for categories in blocks["category"].apply(list))
    assert blocks["share"].sum().to_numpy() == pytest.approx(1.0)
    # methods in the given order, the base first
    assert list(dict.fromkeys(table["method"])) == ["base", "psr", "nsr"]
    for (pid, method), block in blocks:
        top, tally = independent_shares(pid, method)
        block = block.set_index("category")
        total = len(_texts(method, pid))
        assert block["samples"].to_dict() == {c: tally.get(c, 0) for c in CATEGORIES}, (pid, method)
        assert block["share"].to_numpy() == pytest.approx([tally.get(c, 0) / total for c in CATEGORIES])
        assert block.loc[[f"base_wrong_{i}" for i in range(1, 4)], "answer"].tolist() == (top + ["", "", ""])[:3]
        assert block.loc["right", "answer"] == block.loc["right", "right_answer"] == PROBLEMS[pid][2]
    # by hand: the frequent malformed AAA is no wrong answer; the pooled tie CBA = BAC goes by text
    rank = table[(table["problem_id"] == "rank1") & (table["method"] == "base")].set_index("category")
    assert rank.loc[["base_wrong_1", "base_wrong_2", "base_wrong_3"], "answer"].tolist() == ["BAC", "CBA", "ACB"]
    assert rank.loc["malformed", "share"] == pytest.approx(0.35)
    assert rank.loc["other_wrong", "share"] == pytest.approx(0.12)  # CAB 8 + ABC 4
    nsr = table[(table["problem_id"] == "rank1") & (table["method"] == "nsr")].set_index("category")["samples"]
    assert nsr.to_dict() == {"right": 6, "base_wrong_1": 0, "base_wrong_2": 0, "base_wrong_3": 4,
                             "other_wrong": 24, "malformed": 6}
    zero = table[(table["problem_id"] == "zero") & (table["method"] == "base")].set_index("category")
    assert zero.loc["base_wrong_1", "answer"] == "A" and zero.loc["base_wrong_2":"base_wrong_3", "answer"].eq("").all()
    assert zero["question_type"].eq("max").all() and zero["prompt"].eq("question zero").all()


def test_fragile_and_easy_selection(tmp_path):
    problems, paths = write_study(tmp_path)
    table = answer_distributions([("test", problems, paths)])
    selected = table.drop_duplicates("problem_id").set_index("problem_id")
    # fragile: base p <= 5% (0, 1%, and 5% on the edge), by base p; easy: nearest the bin's median
    assert selected.index.tolist() == ["zero", "rank1", "five", "easy_c", "easy_d", "easy_a"]
    assert selected["selection"].tolist() == ["fragile"] * 3 + ["easy"] * 3
    assert selected["difficulty_bin"].tolist() == ["0", "(0,1%]", "(1,5%]"] + ["(20,100%]"] * 3
    assert selected["base_success"].tolist() == pytest.approx([0, 0.01, 0.05, 0.5, 0.7, 0.8])


def test_panels_show_the_largest_psr_nsr_gaps_and_every_easy_problem(tmp_path):
    from nsr.plotting import shown_problems

    problems, paths = write_study(tmp_path)
    table = answer_distributions([("test", problems, paths)])
    # right shares psr / nsr: zero 0 / 2/40, rank1 0 / 6/40, five 2/40 / 2/40: rank1 first
    assert shown_problems(table, cap=1) == [("test", pid) for pid in ("rank1", "easy_c", "easy_d", "easy_a")]
    assert shown_problems(table, cap=2) == [("test", pid) for pid in ("zero", "rank1", "easy_c", "easy_d", "easy_a")]


def test_cli_writes_figure_and_csv(tmp_path, capsys):
    problems, paths = write_study(tmp_path / "results")
    out = tmp_path / "results" / "answer_distributions.png"
    cli.main(["answers", "--set", "test", str(problems), *map(str, paths), "--base", "base", "--output", str(out)])
    assert out.stat().st_size > 10_000
    written = pd.read_csv(out.with_suffix(".csv"), keep_default_na=False)
    expected = answer_distributions([("test", problems, paths)])
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    assert not out.with_suffix(".md").exists()
    assert "test: 3 fragile and 3 easy problems" in capsys.readouterr().out


def test_samples_of_other_problems_are_named(tmp_path):
    problems, paths = write_study(tmp_path)
    odd = tmp_path / "samples" / "psr" / "seed1.parquet"
    pd.read_parquet(odd).query("problem_id != 'mid'").to_parquet(odd)
    with pytest.raises(InputError, match=rf"samples file {odd}: its problems differ from those of .*base/seed1"):
        answer_distributions([("test", problems, paths)])


def test_no_base_samples_is_an_input_error(tmp_path):
    problems, paths = write_study(tmp_path)
    with pytest.raises(InputError, match="no samples file of the base method 'base'"):
        answer_distributions([("test", problems, [p for p in paths if p.parent.name != "base"])])


def test_problems_file_lacking_sampled_problems_is_named(tmp_path):
    problems, paths = write_study(tmp_path)
    pd.read_parquet(problems).query("problem_id != 'rank1'").to_parquet(problems)
    with pytest.raises(InputError, match=rf"base/seed1.parquet: 1 of its problems are not in the problems file "
                                         rf"{problems}"):
        answer_distributions([("test", problems, paths)])


def test_a_test_set_without_fragile_or_easy_problems_keeps_the_header_and_the_figure(tmp_path):
    problems, paths = write_study(tmp_path, {"mid": PROBLEMS["mid"]})  # base p 10%: neither selection
    out = tmp_path / "answer_distributions.png"
    cli.main(["answers", "--set", "test", str(problems), *map(str, paths), "--output", str(out)])
    assert out.stat().st_size > 5_000
    assert out.with_suffix(".csv").read_text().strip() == ",".join(COLUMNS)
