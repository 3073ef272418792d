import itertools
import json

import numpy as np
import pandas as pd
import pytest

from nsr import cli
from nsr.io import InputError
from nsr.passk import bootstrap_ci, evaluate, k_values, load_samples, pass_at_k


def brute_force(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (c of them correct) holding a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


def test_matches_brute_force_enumeration():
    cases = [(n, c) for n in range(1, 9) for c in range(n + 1)]
    n = np.array([a for a, _ in cases])
    c = np.array([b for _, b in cases])
    for k in range(1, 9):
        got = pass_at_k(n, c, k)
        for (ni, ci), value in zip(cases, got):
            if ni < k:
                assert np.isnan(value)
            else:
                assert value == pytest.approx(brute_force(ni, ci, k), abs=1e-12), (ni, ci, k)


def test_edge_cases():
    n = np.array([16, 16, 16, 16, 3])
    c = np.array([0, 16, 1, 5, 1])
    assert pass_at_k(n, c, 1).tolist()[:4] == pytest.approx([0.0, 1.0, 1 / 16, 5 / 16])
    at_n = pass_at_k(n, c, 16)  # k = n: any correct sample -> 1
    assert at_n[:4].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert np.isnan(at_n[4])  # n < k is not estimable
    assert np.all(np.isnan(pass_at_k([3, 2], [1, 1], 4)))
    assert str(pass_at_k([5], [0], 1)[0]) == "0.0"  # no negative zero in the JSON
    with pytest.raises(ValueError):
        pass_at_k([4], [5], 1)


def test_large_n_is_stable():
    # C(1024, 512) overflows floats; the product form must not.
    value = pass_at_k([1024], [1], 512)[0]
    assert value == pytest.approx(0.5)
    assert 0 < pass_at_k([1024], [1], 1)[0] == pytest.approx(1 / 1024)


def test_k_values():
    assert k_values(256) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert k_values(10) == [1, 2, 4, 8, 10]
    assert k_values(1) == [1]


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    values = np.stack([rng.random(200), rng.random(200) ** 3], axis=1)
    lo, hi = bootstrap_ci(values, num_bootstrap=500, seed=3)
    mean = values.mean(axis=0)
    assert np.all(lo < mean) and np.all(mean < hi)
    # about the normal-theory width 2 * 1.96 * sd / sqrt(P)
    expected = 2 * 1.96 * values.std(axis=0) / np.sqrt(200)
    assert np.allclose(hi - lo, expected, rtol=0.2)
    lo2, hi2 = bootstrap_ci(values, num_bootstrap=500, seed=3)
    assert np.array_equal(lo, lo2) and np.array_equal(hi, hi2)
    # constant values: zero-width interval at the value
    assert bootstrap_ci(np.ones(10), 50, 0)[0][0] == 1.0


def samples_frame(correct_counts, n, offset=0):
    rows = []
    for pid, c in enumerate(correct_counts):
        rows += [{"problem_id": f"p{pid + offset}", "sample_idx": i, "completion": "x", "answer": "1",
                  "reward": float(i < c), "correct": i < c} for i in range(n)]
    return pd.DataFrame(rows)


def test_load_parquet_json_jsonl_agree(tmp_path):
    frame = samples_frame([0, 2, 4], n=4)
    frame.to_parquet(tmp_path / "s.parquet")
    records = frame[["problem_id", "correct"]].to_dict("records")
    (tmp_path / "s.json").write_text(json.dumps(records))
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps({**r, "correct": int(r["correct"])}) for r in records))
    loaded = [load_samples(tmp_path / name) for name in ("s.parquet", "s.json", "s.jsonl")]
    for other in loaded[1:]:
        pd.testing.assert_frame_equal(loaded[0], other)
    assert loaded[0]["correct"].sum() == 6


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("missing.json", json.dumps([{"problem_id": 1}]), "correct"),
        ("wrongtype.json", json.dumps([{"problem_id": 1, "correct": "yes"}]), "correct"),
        ("two.json", json.dumps([{"problem_id": 1, "correct": 2}]), "correct"),
        ("null.json", json.dumps([{"problem_id": 1, "correct": None}]), "missing"),
        ("pid.json", json.dumps([{"problem_id": [1], "correct": True}]), "problem_id"),
        ("empty.json", "[]", "no rows"),
        ("empty.jsonl", "", "no rows"),
        ("notlist.json", json.dumps({"a": 1}), "list of objects"),
        ("broken.jsonl", '{"problem_id": 1, "correct": true}\n{oops', "unreadable"),
        ("broken.parquet", "not parquet", "unreadable"),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError) as err:
        load_samples(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_bad_parquet_column_type(tmp_path):
    path = tmp_path / "s.parquet"
    pd.DataFrame({"problem_id": ["a", "b"], "correct": [0.5, 1.0]}).to_parquet(path)
    with pytest.raises(InputError, match="correct"):
        load_samples(path)
    with pytest.raises(InputError, match="does not exist"):
        load_samples(tmp_path / "nope.parquet")


def test_evaluate_single_file(tmp_path):
    path = tmp_path / "nsr" / "seed7.parquet"
    path.parent.mkdir()
    correct = [0, 1, 4, 8]
    samples_frame(correct, n=8).to_parquet(path)
    result = evaluate([path], num_bootstrap=200)
    assert result["method"] == "nsr" and result["seed"] == 7  # from the path layout
    assert result["test_set"] == "test"  # the study's own test set unless named
    assert result["n"] == 8 and result["num_problems"] == 4
    assert list(result["pass_at_k"]) == ["1", "2", "4", "8"]
    assert result["pass_at_k"]["1"] == pytest.approx(np.mean(correct) / 8)
    assert result["pass_at_k"]["8"] == pytest.approx(0.75)
    for k, (lo, hi) in result["ci95"].items():
        assert lo <= result["pass_at_k"][k] <= hi
    assert "seeds" not in result


def test_k_above_smallest_n_not_reported(tmp_path):
    frame = pd.concat([samples_frame([1], n=8), samples_frame([1], n=3, offset=1)])
    frame.to_parquet(tmp_path / "s.parquet")
    result = evaluate([tmp_path / "s.parquet"], method="m", num_bootstrap=10)
    assert list(result["pass_at_k"]) == ["1", "2", "3"]


def test_seed_aggregation(tmp_path):
    per_seed = [[0, 2, 4], [2, 2, 4], [4, 4, 4]]
    paths = []
    for seed, correct in enumerate(per_seed):
        paths.append(tmp_path / f"seed{seed}.parquet")
        samples_frame(correct, n=4).to_parquet(paths[-1])
    result = evaluate(paths, method="psr", num_bootstrap=200)
    p1 = [np.mean(c) / 4 for c in per_seed]
    assert result["seeds"] == [0, 1, 2]
    assert [r["1"] for r in result["per_seed"]] == pytest.approx(p1)
    assert result["pass_at_k"]["1"] == pytest.approx(np.mean(p1))
    assert result["std"]["1"] == pytest.approx(np.std(p1, ddof=1))
    assert result["num_problems"] == 3
    lo, hi = result["ci95"]["1"]
    assert lo <= result["pass_at_k"]["1"] <= hi
    with pytest.raises(InputError, match="--seed"):
        evaluate(paths, seeds=[1, 2])


def test_cli_writes_json_and_prints_seed_guide_lines(tmp_path, capsys):
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps([{"problem_id": p, "correct": p == 0 or i == 0}
                                   for p in range(4) for i in range(4)]))
    out = tmp_path / "out" / "seed1.json"
    cli.main(["passk", "--samples", str(samples), "--method", "grpo", "--seed", "1", "--test-set", "aime25",
              "--output", str(out), "--num-bootstrap", "100"])
    printed = capsys.readouterr().out
    # the seed guide's block: (4 + 1 + 1 + 1) / 16 at k = 1
    assert "Pass@k Results:\n  Pass@1: 43.75%\n  Pass@2: 62.50%\n  Pass@4: 100.00%\n" in printed
    result = json.loads(out.read_text())
    assert set(result) == {"method", "test_set", "seed", "n", "num_problems", "pass_at_k", "ci95", "bootstrap", "per_problem"}
    assert result["per_problem"]["pass_at_k"]["1"] == pytest.approx([1.0, 0.25, 0.25, 0.25])  # seed-averaged, per problem
    assert result["method"] == "grpo" and result["seed"] == 1 and result["n"] == 4
    assert result["test_set"] == "aime25"
    assert "grpo on aime25: 4 problems" in printed
    assert [p.name for p in out.parent.iterdir()] == ["seed1.json"]  # no temp files left


def test_cli_bad_file_exits_with_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem_id": 1}\n')
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["passk", "--samples", str(bad)])
    assert exit_info.value.code == 2
    assert str(bad) in capsys.readouterr().err


def test_cli_seed_guide_flags_and_formats_by_content(tmp_path, capsys):
    """`--samples-path S --output-path R --method-name M` as in the guide; a parquet named .json is read."""
    frame = samples_frame([0, 2, 4], n=4)
    frame.to_parquet(tmp_path / "samples_nsr.json")  # Parquet bytes under a .json name
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    for name in ("samples_nsr.json", "samples.jsonl"):
        out = tmp_path / f"results_{name}.json"
        cli.main(["passk", "--samples-path", str(tmp_path / name), "--output-path", str(out), "--method-name", "NSR",
                  "--num-bootstrap", "50"])
        assert "Pass@k Results:\n  Pass@1: 50.00%\n" in capsys.readouterr().out  # (0 + 2 + 4) / 12
        result = json.loads(out.read_text())
        assert result["method"] == "NSR" and result["pass_at_k"]["1"] == pytest.approx(0.5)


def test_paired_difference_matches_brute_force(tmp_path):
    """Δ Pass@k vs base with a paired bootstrap CI: recomputed by hand from a small samples file."""
    from math import comb

    from nsr.plotting import load_results

    rng = np.random.default_rng(7)
    n, problems = 8, [f"p{i:02d}" for i in range(12)]  # sorted as the per-problem values are
    counts = {"base": rng.integers(0, n + 1, len(problems)), "psr": rng.integers(0, n + 1, len(problems))}
    paths = []
    for method, cs in counts.items():
        rows = [{"problem_id": p, "sample_idx": j, "correct": j < c} for p, c in zip(problems, cs) for j in range(n)]
        path = tmp_path / method / "seed1.parquet"
        path.parent.mkdir()
        pd.DataFrame(rows).sample(frac=1.0, random_state=0).to_parquet(path)  # order must not matter
        out = tmp_path / f"{method}.json"
        out.write_text(json.dumps(evaluate([path], num_bootstrap=400, bootstrap_seed=3)))
        paths.append(out)
    table = load_results(paths).set_index(["method", "k"])
    for k in (1, 4, 8):
        exact = {m: np.array([1 - comb(n - c, k) / comb(n, k) for c in cs]) for m, cs in counts.items()}
        diff = exact["psr"] - exact["base"]
        # the same replicates the implementation draws: one block of 400 x 12 problem indices
        picks = np.random.default_rng(3).integers(0, len(problems), size=(400, len(problems)))
        means = np.array([diff[row].mean() for row in picks])
        row = table.loc[("psr", k)]
        assert row["diff_vs_base"] == pytest.approx(diff.mean(), abs=1e-12)
        assert row["diff_ci_low"] == pytest.approx(np.percentile(means, 2.5), abs=1e-12)
        assert row["diff_ci_high"] == pytest.approx(np.percentile(means, 97.5), abs=1e-12)
        assert np.isnan(table.loc[("base", k), "diff_vs_base"])
    # pairing: the CI of a difference is tighter than the separate CIs would suggest
    width = table.loc[("psr", 1), "diff_ci_high"] - table.loc[("psr", 1), "diff_ci_low"]
    assert width > 0


def test_paired_difference_needs_the_same_problems(tmp_path):
    from nsr.plotting import load_results

    paths = []
    for method, ids in (("base", ["a", "b"]), ("nsr", ["a", "c"])):
        path = tmp_path / method / "seed1.parquet"
        path.parent.mkdir()
        pd.DataFrame({"problem_id": ids * 2, "correct": [True, False, False, True]}).to_parquet(path)
        out = tmp_path / f"{method}.json"
        out.write_text(json.dumps(evaluate([path], num_bootstrap=10)))
        paths.append(out)
    with pytest.raises(InputError, match="different problems"):
        load_results(paths)
