import io
import json

import pytest

from nsr.io import InputError
from nsr.tasks import synthchart


def recompute(row) -> str:
    """Answer from the table column, written independently of synthchart.compute_answer."""
    t = json.loads(row["table"])
    values, a, b = t["values"], t["a"], t["b"]
    order = [k for k, _ in sorted(values.items(), key=lambda kv: -kv[1])]
    return {
        "max": max(values, key=values.get),
        "min": min(values, key=values.get),
        "second": order[1],
        "rank": "".join(order),
        "top3": "".join(order[:3]),
        "lookup": str(values[a]) if a else None,
        "diff": str(values[a] - values[b]) if a else None,
        "sum": str(values[a] + values[b]) if a else None,
    }[row["question_type"]]


def test_same_seed_same_rows_and_prefix():
    a = synthchart.load("train", 50, seed=3)
    assert a == synthchart.load("train", 50, seed=3)
    assert synthchart.load("train", 20, seed=3) == a[:20]
    assert a != synthchart.load("train", 50, seed=4)


def test_splits_disjoint_by_content():
    seen = {}
    for split in ("warmstart", "train", "test"):
        rows = synthchart.load(split, 400, seed=0, types=synthchart.QUESTION_TYPES)
        keys = {(r["table"], r["question_type"]) for r in rows}
        assert len(keys) == len(rows)  # no duplicates within a split
        seen[split] = keys
    assert not seen["warmstart"] & seen["train"]
    assert not seen["warmstart"] & seen["test"]
    assert not seen["train"] & seen["test"]


@pytest.mark.parametrize("options", [{}, {"shuffle_labels": False, "value_range": (10, 99), "min_categories": 3}])
def test_answers_recomputed_for_every_type(options):
    rows = synthchart.load("test", 300, seed=1, types=synthchart.QUESTION_TYPES, **options)
    assert {r["question_type"] for r in rows} == set(synthchart.QUESTION_TYPES)
    for r in rows:
        assert r["answer"] == recompute(r), r
        values = json.loads(r["table"])["values"]
        # the text prompt carries the full table, so the answer is derivable from it
        assert all(f"{k}={v}" in r["prompt"] for k, v in values.items())
        assert r["problem_id"].startswith("synthchart-")
    assert len({r["problem_id"] for r in rows}) == len(rows)


def test_answer_space_not_guessable():
    from collections import Counter

    rows = synthchart.load("test", 300, seed=0)
    counts = Counter(r["answer"] for r in rows)
    # no constant answer scores (labels are random letters, half the mix is a ranking)
    assert len(counts) > 100 and counts.most_common(1)[0][1] / len(rows) < 0.05
    assert sum(r["question_type"] == "rank" for r in rows) > 100


def test_image_render_is_png_without_values_in_prompt():
    from PIL import Image

    rows = synthchart.load("test", 4, seed=0, render="image")
    text_rows = synthchart.load("test", 4, seed=0)
    for r, t in zip(rows, text_rows):
        assert (r["problem_id"], r["answer"]) == (t["problem_id"], t["answer"])
        img = Image.open(io.BytesIO(r["image"]))
        img.load()
        assert img.format == "PNG" and img.size[0] > 100
        assert "=" not in r["prompt"]


@pytest.mark.parametrize("kwargs", [{"split": "dev"}, {"split": "test", "render": "svg"},
                                    {"split": "test", "types": "max,median"},
                                    {"split": "test", "types": {"max": 0}}])
def test_bad_options_raise_input_error(kwargs):
    with pytest.raises(InputError):
        synthchart.load(num=3, seed=0, **kwargs)


@pytest.mark.parametrize("qtype, answer, expected", [
    ("rank", "DKQB", True), ("rank", " KDBQ ", True), ("rank", "DKQ", False), ("rank", "DKQQ", False),
    ("rank", "DKQBB", False), ("rank", "DKQZ", False),
    ("max", "Q", True), ("min", "Z", False), ("second", "DK", False),
    ("diff", "-3", True), ("sum", "12", True), ("lookup", "K", False),
])
def test_well_formed_answers(qtype, answer, expected):
    table = {"K": 7, "B": 1, "Q": 6, "D": 9}
    assert synthchart.is_well_formed(table, qtype, answer) is expected
    # the right answer is always well formed
    assert synthchart.is_well_formed(table, qtype, synthchart.compute_answer(table, qtype, "K", "B"))


def test_string_options_as_given_by_the_cli():
    rows = synthchart.load("test", 20, 1, types="rank", min_categories="3", max_categories="3",
                           value_range="10,20", shuffle_labels="false")
    for row in rows:
        values = json.loads(row["table"])["values"]
        assert list(values) == ["A", "B", "C"] and all(10 <= v <= 20 for v in values.values())
        assert row["question_type"] == "rank"
    for options, message in [({"max_categories": "x"}, "max_categories"), ({"value_range": "5"}, "value_range"),
                             ({"shuffle_labels": "maybe"}, "shuffle_labels"), ({"colour": "red"}, "unknown option")]:
        with pytest.raises(InputError, match=message):
            synthchart.load("test", 2, 1, **options)


def test_graded_credit_option_marks_each_answer_kind():
    from nsr.rewards import score

    binary = synthchart.load("test", 60, 2, types=synthchart.QUESTION_TYPES)
    graded = synthchart.load("test", 60, 2, types=synthchart.QUESTION_TYPES, credit="graded")
    assert all("credit" not in row for row in binary)  # default: binary rewards, the paper's setting
    assert [{k: v for k, v in row.items() if k != "credit"} for row in graded] == binary  # same problems
    expected = {"rank": "ranking", "top3": "ranking", "lookup": "graded", "diff": "graded", "sum": "graded",
                "max": "binary", "min": "binary", "second": "binary"}
    assert {row["question_type"]: row["credit"] for row in graded} == expected
    rank = next(row for row in graded if row["question_type"] == "rank" and len(row["answer"]) == 4)
    swapped = rank["answer"][:2] + rank["answer"][3] + rank["answer"][2]  # last two positions wrong
    assert score(swapped, rank["answer"], rank["credit"]) == 0.5
    label = next(row for row in graded if row["question_type"] == "max")
    assert score("" if label["answer"] != "Z" else "Y", label["answer"], label["credit"]) == 0.0
    with pytest.raises(InputError, match="'credit'"):
        synthchart.load("test", 2, 1, credit="partial")


def test_exact_numeric_match_reaches_training_rewards_sampling_and_pass_at_k():
    """numeric_match=exact: a near-miss 3-digit sum scores 1 under relaxed matching, 0 under exact, in the
    reward TRL trains on, the sampled rows' rewards and correctness, and so Pass@k."""
    import pandas as pd

    from nsr.data import load_problems
    from nsr.passk import counts_per_problem, pass_at_k
    from nsr.rewards import score
    from nsr.sampling.store import score_rows
    from nsr.train_cli import reward_correctness

    options = {"types": "sum,max", "value_range": "100,999"}
    relaxed = load_problems("synthchart", "test", 6, seed=2, **options)
    exact = load_problems("synthchart", "test", 6, seed=2, numeric_match="exact", **options)
    assert "numeric_match" not in relaxed.columns and set(exact["numeric_match"]) == {"exact"}
    assert (relaxed["answer"] == exact["answer"]).all()
    sums = exact["question_type"] == "sum"
    assert sums.any() and (~sums).any()
    near = [str(int(a) + 3) if t == "sum" else a for a, t in zip(exact["answer"], exact["question_type"])]
    assert score(near[sums.idxmax()], exact["answer"][sums.idxmax()], "binary", "relaxed") == 1.0
    assert score(near[sums.idxmax()], exact["answer"][sums.idxmax()], "binary", "exact") == 0.0

    def trained(frame):  # as TRL calls the reward: the batch's columns as keyword lists
        columns = {c: list(frame[c]) for c in frame.columns if c not in ("prompt", "answer")}
        return reward_correctness(near, answer=list(frame["answer"]), **columns)

    assert trained(relaxed) == [1.0] * 6
    assert trained(exact) == [0.0 if s else 1.0 for s in sums]

    completions = [[n, a] for n, a in zip(near, exact["answer"])]  # a near miss, then the answer itself
    for frame, sum_pass_at_1 in ((relaxed, 1.0), (exact, 0.5)):
        samples = score_rows(frame, completions)
        counts = counts_per_problem(samples).set_index("problem_id").loc[frame["problem_id"]]
        p1 = pass_at_k(counts["n"].to_numpy(), counts["c"].to_numpy(), 1)
        assert list(p1[sums.to_numpy()]) == [sum_pass_at_1] * sums.sum() and (p1[~sums.to_numpy()] == 1).all()
    with pytest.raises(InputError, match="'numeric_match'"):
        synthchart.load("test", 2, 1, numeric_match="strict")
    bad = exact.assign(numeric_match="strict")
    with pytest.raises(InputError, match="column 'numeric_match'"):
        from nsr.data import validate_rows

        validate_rows(pd.DataFrame(bad), "bad.parquet")
