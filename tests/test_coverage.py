"""nsr.coverage: test problems binned by the base's success rate, per method the share solved; `nsr coverage`."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest

from nsr import cli
from nsr.coverage import BINS, COLUMNS, coverage_table, difficulty_bin, fragile_coverage
from nsr.io import InputError

N = 100  # samples per problem and seed: p of exactly 1%, 5% and 20% are reachable

# test set -> method -> problem -> correct samples in seed 1 and seed 2 (of N each). The base's
# pooled p (of 2N) sits on and next to each bin edge.
CORRECT = {
    "mix": {
        "base": {"zero": (0, 0), "one_pct": (1, 1), "half_pct": (1, 0), "1.5pct": (2, 1), "five_pct": (5, 5),
                 "twenty_pct": (20, 20), "20.5pct": (21, 20), "easy": (90, 95)},
        "nsr": {"zero": (1, 0), "one_pct": (0, 3), "half_pct": (2, 2), "1.5pct": (0, 0), "five_pct": (7, 1),
                "twenty_pct": (30, 10), "20.5pct": (0, 50), "easy": (99, 100)},
        "psr": {"zero": (0, 0), "one_pct": (0, 0), "half_pct": (0, 1), "1.5pct": (4, 0), "five_pct": (0, 0),
                "twenty_pct": (60, 70), "20.5pct": (80, 81), "easy": (100, 100)},
    },
    # no problem with base p in (5,20%]: an empty bin
    "min": {
        "base": {"a": (0, 0), "b": (0, 2), "c": (50, 50)},
        "nsr": {"a": (3, 0), "b": (1, 1), "c": (40, 0)},
        "psr": {"a": (0, 0), "b": (0, 0), "c": (100, 100)},
    },
}
EXPECTED_BINS = {"zero": "0", "one_pct": "(0,1%]", "half_pct": "(0,1%]", "1.5pct": "(1,5%]", "five_pct": "(1,5%]",
                 "twenty_pct": "(5,20%]", "20.5pct": "(20,100%]", "easy": "(20,100%]",
                 "a": "0", "b": "(0,1%]", "c": "(20,100%]"}


def write_samples(root: Path) -> list[tuple[str, list[Path]]]:
    """The samples files of CORRECT as the workflow lays them out (nsr's jsonl for psr seed 2)."""
    sets = []
    for test_set, methods in CORRECT.items():
        folder = root / "samples" if test_set == "mix" else root / "test_sets" / test_set / "samples"
        paths = []
        for method, problems in methods.items():
            for seed in (1, 2):
                rows = [{"problem_id": pid, "sample_idx": i, "completion": "x", "correct": i < correct[seed - 1]}
                        for pid, correct in problems.items() for i in range(N)]
                path = folder / method / f"seed{seed}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                if method == "psr" and seed == 2:
                    path = path.with_suffix(".jsonl")
                    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
                else:
                    pd.DataFrame(rows).to_parquet(path)
                paths.append(path)
        sets.append((test_set, paths))
    return sets


def independent_table(sets: list[tuple[str, list[Path]]]) -> list[dict]:
    """The table by plain loops over the sample rows, bins from exact fractions."""
    edges = [("0", Fraction(0)), ("(0,1%]", Fraction(1, 100)), ("(1,5%]", Fraction(5, 100)),
             ("(5,20%]", Fraction(20, 100)), ("(20,100%]", Fraction(1))]
    rows = []
    for test_set, paths in sets:
        tallies = {}  # method -> seed file -> problem -> [samples, correct]
        for path in paths:
            records = (pd.read_parquet(path).to_dict("records") if path.suffix == ".parquet"
                       else [json.loads(line) for line in path.read_text().splitlines()])
            tally = tallies.setdefault(path.parent.name, {}).setdefault(path.stem, {})
            for record in records:
                counts = tally.setdefault(record["problem_id"], [0, 0])
                counts[0] += 1
                counts[1] += bool(record["correct"])
        pooled = {}
        for tally in tallies["base"].values():
            for pid, (n, c) in tally.items():
                pooled[pid] = [pooled.get(pid, [0, 0])[0] + n, pooled.get(pid, [0, 0])[1] + c]
        bin_of = {pid: next(label for label, edge in edges if Fraction(c, n) <= edge) for pid, (n, c) in pooled.items()}
        for method, seeds in tallies.items():
            for label, _ in edges:
                members = [pid for pid in bin_of if bin_of[pid] == label]
                solved, success = [], []
                for tally in seeds.values():
                    if members:
                        solved.append(sum(tally[pid][1] > 0 for pid in members) / len(members))
                        success.append(sum(tally[pid][1] / tally[pid][0] for pid in members) / len(members))
                rows.append({"test_set": test_set, "method": method, "bin": label, "problems": len(members),
                             "solved_pct": 100 * sum(solved) / len(solved) if solved else math.nan,
                             "mean_success_pct": 100 * sum(success) / len(success) if success else math.nan})
    return rows


def test_bins_close_on_their_upper_edge():
    assert [difficulty_bin(c, 200) for c in (0, 1, 2, 3, 10, 11, 40, 41, 200)] == [
        "0", "(0,1%]", "(0,1%]", "(1,5%]", "(1,5%]", "(5,20%]", "(5,20%]", "(20,100%]", "(20,100%]"]
    # exact in integers: 7/700 is 1% (a float division would not decide the edge reliably)
    assert difficulty_bin(7, 700) == "(0,1%]" and difficulty_bin(8, 700) == "(1,5%]"
    assert difficulty_bin(35, 700) == "(1,5%]" and difficulty_bin(140, 700) == "(5,20%]"


def test_table_equals_an_independent_count(tmp_path):
    sets = write_samples(tmp_path)
    table = coverage_table(sets)
    assert list(table.columns) == list(COLUMNS)
    expected = pd.DataFrame(independent_table(sets))
    assert len(table) == len(expected) == 2 * 3 * len(BINS)
    pd.testing.assert_frame_equal(table, expected[list(COLUMNS)], check_dtype=False, atol=1e-9)
    # the bins hold the problems CORRECT puts on each edge
    for test_set, methods in CORRECT.items():
        counts = table[(table["test_set"] == test_set) & (table["method"] == "base")].set_index("bin")["problems"]
        want = {label: sum(EXPECTED_BINS[pid] == label for pid in methods["base"]) for label in BINS}
        assert counts.to_dict() == want
    mix = table[table["test_set"] == "mix"].set_index(["method", "bin"])
    # a few cells by hand: nsr solves 'zero' in seed 1 only -> 50%; the base misses half_pct in seed 2
    assert mix.loc[("nsr", "0"), "solved_pct"] == pytest.approx(50)
    assert mix.loc[("nsr", "0"), "mean_success_pct"] == pytest.approx(100 * (1 / N + 0) / 2)
    assert mix.loc[("base", "(0,1%]"), "solved_pct"] == pytest.approx((100 + 50) / 2)
    assert mix.loc[("psr", "(1,5%]"), "solved_pct"] == pytest.approx((50 + 0) / 2)
    # the empty bin keeps its row: 0 problems, no shares
    empty = table[(table["test_set"] == "min") & (table["bin"] == "(5,20%]")]
    assert len(empty) == 3 and empty["problems"].eq(0).all()
    assert empty["solved_pct"].isna().all() and empty["mean_success_pct"].isna().all()


def test_fragile_coverage_weighs_the_bins_by_their_problems(tmp_path):
    table = coverage_table(write_samples(tmp_path))
    problems, solved = fragile_coverage(table, "mix")
    assert problems == 5  # zero, one_pct, half_pct, 1.5pct, five_pct
    # per seed: problems of the five solved at least once, then the mean over the 2 seeds
    per_seed = {"base": (4 / 5, 3 / 5), "nsr": (3 / 5, 3 / 5), "psr": (1 / 5, 1 / 5)}
    assert solved == pytest.approx({m: 100 * sum(s) / 2 for m, s in per_seed.items()})
    assert fragile_coverage(table, "min")[0] == 2
    assert fragile_coverage(table, "nope") == (0, {})


def test_cli_writes_csv_markdown_and_figure(tmp_path, capsys):
    sets = write_samples(tmp_path / "results")
    out = tmp_path / "results" / "coverage_by_difficulty.png"
    argv = ["coverage"]
    for name, paths in sets:
        argv += ["--set", name, *map(str, paths)]
    cli.main([*argv, "--output", str(out)])
    assert out.stat().st_size > 10_000
    table = pd.read_csv(out.with_suffix(".csv"))
    pd.testing.assert_frame_equal(table, pd.DataFrame(independent_table(sets))[list(COLUMNS)],
                                  check_dtype=False, atol=1e-5)
    markdown = out.with_suffix(".md").read_text()
    assert "**mix** (8 problems)" in markdown and "**min** (3 problems)" in markdown
    assert "| base p | problems | base | nsr | psr |" in markdown
    assert "| 0 | 1 | 0.0 (0.0) | 50.0 (0.5) | 0.0 (0.0) |" in markdown
    assert "| (5,20%] | 0 | – | – | – |" in markdown
    assert markdown in capsys.readouterr().out


def test_bad_input_names_the_file(tmp_path, capsys):
    sets = write_samples(tmp_path)
    name, paths = sets[0]
    broken = paths[3]  # nsr seed 2
    broken.write_bytes(b"not a samples file")
    with pytest.raises(InputError, match=str(broken)):
        coverage_table([(name, paths)])
    with pytest.raises(SystemExit) as exit_:
        cli.main(["coverage", "--set", name, *map(str, paths), "--output", str(tmp_path / "c.png")])
    assert exit_.value.code == 2 and str(broken) in capsys.readouterr().err
    assert not (tmp_path / "c.csv").exists()


def test_methods_must_share_the_base_problems_and_a_base_is_needed(tmp_path):
    name, paths = write_samples(tmp_path)[0]
    odd = paths[2]  # nsr seed 1
    frame = pd.read_parquet(odd)
    frame[frame["problem_id"] != "easy"].to_parquet(odd)
    with pytest.raises(InputError, match=rf"samples file {odd}: its problems differ .*'easy'"):
        coverage_table([(name, paths)])
    with pytest.raises(InputError, match="no samples file of the base method 'base'"):
        coverage_table([(name, paths[2:])])
