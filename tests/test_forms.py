"""nsr.forms: correct / well formed but wrong / malformed shares and distinct answers; `nsr forms`."""

import json

import pandas as pd
import pytest

from nsr import cli
from nsr.forms import answer_forms, classify, summarize
from nsr.io import InputError


def _problems():
    rows = [("r1", "rank", {"A": 3, "B": 9, "C": 5}, "BCA"), ("m1", "max", {"A": 3, "B": 9}, "B")]
    return pd.DataFrame([{"problem_id": pid, "prompt": "x", "answer": ans, "question_type": qt,
                          "table": json.dumps({"values": values, "a": None, "b": None})}
                         for pid, qt, values, ans in rows])


def _samples(completions):
    """completions: {problem_id: [texts]}; correct = exact answer (as nsr.rewards.score would say)."""
    answers = {"r1": "BCA", "m1": "B"}
    return pd.DataFrame([{"problem_id": pid, "sample_idx": i, "completion": text, "correct": text.strip() == answers[pid]}
                         for pid, texts in completions.items() for i, text in enumerate(texts)])


def test_classify_and_summarize_count_each_form():
    samples = _samples({"r1": ["BCA", "CBA", "BBA", "BCAX", "CBA", " BCA"], "m1": ["B", "A", "Z", "B"]})
    forms = classify(_problems(), samples.assign(run="seed1"))
    assert forms["form"].tolist() == ["correct", "wrong", "malformed", "malformed", "wrong", "correct",
                                      "correct", "wrong", "malformed", "correct"]
    summary = summarize(forms).set_index("question_type")
    assert summary.loc["rank", ["correct", "wrong", "malformed"]].tolist() == pytest.approx([2 / 6, 2 / 6, 2 / 6])
    assert summary.loc["max", ["correct", "wrong", "malformed"]].tolist() == pytest.approx([2 / 4, 1 / 4, 1 / 4])
    assert summary.loc["all", "correct"] == pytest.approx(4 / 10)
    assert summary.loc["all", "well_formed"] == pytest.approx(7 / 10)
    # distinct extracted answers per problem: rank {BCA, CBA, BBA, BCAX} = 4, max {B, A, Z} = 3
    assert summary.loc["rank", "distinct_answers"] == 4
    assert summary.loc["max", "distinct_answers"] == 3
    assert summary.loc["all", "distinct_answers"] == pytest.approx(3.5)


def test_distinct_answers_are_counted_per_samples_file():
    problems = _problems()
    two_seeds = pd.concat([_samples({"m1": ["A", "B"]}).assign(run="seed1"),
                           _samples({"m1": ["A", "A"]}).assign(run="seed2")])
    summary = summarize(classify(problems, two_seeds)).set_index("question_type")
    assert summary.loc["max", "distinct_answers"] == pytest.approx((2 + 1) / 2)  # not 2 pooled


def test_other_tasks_count_an_extractable_answer_as_well_formed():
    problems = pd.DataFrame({"problem_id": ["q"], "prompt": ["?"], "answer": ["42"]})
    samples = pd.DataFrame({"problem_id": ["q"] * 3, "completion": ["42", "The answer is \\boxed{41}", "  "],
                            "correct": [True, False, False], "run": "seed1"})
    assert classify(problems, samples)["form"].tolist() == ["correct", "wrong", "malformed"]


def test_unknown_problem_is_an_input_error():
    samples = _samples({"m1": ["B"]}).assign(problem_id="nope", run="seed1")
    with pytest.raises(InputError, match="not in the problem set"):
        classify(_problems(), samples)


def test_cli_writes_figure_and_tables(tmp_path, capsys):
    problems = tmp_path / "test.parquet"
    _problems().to_parquet(problems)
    files = []
    for method, texts in (("base", ["BCA", "ACB", "AAA"]), ("nsr", ["BCA", "XYZ", "CBA"])):
        for seed in (1, 2):
            path = tmp_path / "samples" / method / f"seed{seed}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            _samples({"r1": texts, "m1": ["B", "A", "B"]}).to_parquet(path)
            files.append(str(path))
    out = tmp_path / "plots" / "answer_forms.png"
    cli.main(["forms", "--set", "mixed", str(problems), *files, "--output", str(out)])
    assert out.stat().st_size > 10_000
    table = pd.read_csv(out.with_suffix(".csv"))
    assert set(table["method"]) == {"base", "nsr"} and set(table["test_set"]) == {"mixed"}
    assert set(table["question_type"]) == {"all", "rank", "max"}
    nsr_rank = table[(table["method"] == "nsr") & (table["question_type"] == "rank")].iloc[0]
    assert nsr_rank[["correct", "wrong", "malformed"]].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert "| nsr |" in out.with_suffix(".md").read_text() and "| nsr |" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["answer_forms.csv", "answer_forms.md", "answer_forms.png"]


def test_answer_forms_of_several_test_sets(tmp_path):
    problems = tmp_path / "p.parquet"
    _problems().to_parquet(problems)
    path = tmp_path / "grpo" / "seed3.parquet"
    path.parent.mkdir()
    _samples({"r1": ["BCA"], "m1": ["A"]}).to_parquet(path)
    table = answer_forms([("mixed", problems, [path]), ("again", problems, [path])])
    assert list(dict.fromkeys(table["test_set"])) == ["mixed", "again"]
    with pytest.raises(SystemExit):
        cli.main(["forms", "--set", "mixed", str(problems), "--output", str(tmp_path / "x.png")])
