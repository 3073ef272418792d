"""Answer forms of a study's samples: correct, well formed but wrong, malformed; distinct answers.

Where the probability that training moves goes decides the large-k comparison: the paper's
mechanism (NSR pushes sampled wrong answers down, the freed mass follows the prior to the other
plausible answers) needs wrong answers that stay well formed. So every sample is one of

    correct    the task's own accuracy says so (the samples file's ``correct``)
    wrong      a possible answer of the right form that is not the answer
    malformed  not a possible answer at all

and per problem the number of distinct answers among one model's samples measures how spread
its distribution is. Well-formedness comes from the task: synthchart knows each table's labels
(a permutation of them for rank, one label for max/min/2nd); any other task counts a sample
well formed when an answer can be extracted from it (nsr.rewards.extract_answer not empty).

This module only counts; nsr.plotting draws the figure and nsr.forms_cli is the `nsr forms`
command (imports run one way: forms_cli -> plotting -> forms).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from nsr.io import InputError

FORMS = ("correct", "wrong", "malformed")
ALL_TYPES = "all"


def well_formed_check(problems: pd.DataFrame) -> Callable[[str, str], bool]:
    """(problem_id, extracted answer) -> bool for this problem set (synthchart rows carry their table)."""
    if {"question_type", "table"} <= set(problems.columns):
        from nsr.tasks.synthchart import is_well_formed

        tables = {pid: json.loads(table)["values"] for pid, table in zip(problems["problem_id"], problems["table"])}
        types = dict(zip(problems["problem_id"], problems["question_type"]))
        return lambda pid, answer: is_well_formed(tables[pid], types[pid], answer)
    return lambda pid, answer: bool(answer.strip())


def classify(problems: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """``samples`` with ``answer_text`` (the extracted answer), ``form`` and ``question_type`` added."""
    from nsr.rewards import extract_answer

    problems = problems.assign(problem_id=problems["problem_id"].astype(str))
    samples = samples.assign(problem_id=samples["problem_id"].astype(str))
    unknown = sorted(set(samples["problem_id"]) - set(problems["problem_id"]))
    if unknown:
        raise InputError(f"{len(unknown)} sampled problem(s) are not in the problem set, e.g. {unknown[0]!r}")
    check = well_formed_check(problems)
    # A sampled policy repeats itself: each distinct completion is parsed, and each distinct
    # (problem, answer) checked, once (a study's 768k samples hold a few percent distinct ones).
    completions, pids = samples["completion"].tolist(), samples["problem_id"].tolist()
    answer_of = {c: extract_answer(c) for c in set(completions)}
    texts = [answer_of[c] for c in completions]
    formed_of = {pair: check(*pair) for pair in set(zip(pids, texts))}
    form = ["correct" if ok else ("wrong" if formed_of[pair] else "malformed")
            for ok, pair in zip(samples["correct"].tolist(), zip(pids, texts))]
    types = problems.set_index("problem_id")["question_type"] if "question_type" in problems else None
    return samples.assign(
        answer_text=texts,
        form=form,
        question_type=samples["problem_id"].map(types) if types is not None else ALL_TYPES,
    )


def summarize(classified: pd.DataFrame) -> pd.DataFrame:
    """Per question type (and ``all``): share of each form and mean distinct answers per problem.

    Distinct answers are counted among one samples file's samples of a problem (one seed: n
    samples), then averaged over problems and files.
    """
    frames = [classified]
    if classified["question_type"].nunique() > 1 or classified["question_type"].iloc[0] != ALL_TYPES:
        frames.append(classified.assign(question_type=ALL_TYPES))
    rows = []
    for qtype, group in pd.concat(frames).groupby("question_type", sort=True):
        shares = group["form"].value_counts(normalize=True)
        distinct = group.groupby(["run", "problem_id"])["answer_text"].nunique().mean()
        rows.append({"question_type": qtype, **{f: float(shares.get(f, 0.0)) for f in FORMS},
                     "well_formed": float(shares.get("correct", 0.0) + shares.get("wrong", 0.0)),
                     "distinct_answers": float(distinct), "samples": int(len(group))})
    return pd.DataFrame(rows)


def answer_forms(test_sets: Sequence[tuple[str, str | Path, Sequence[str | Path]]]) -> pd.DataFrame:
    """One row per (test set, method, question type); methods are the samples files' folder names."""
    from nsr.data import read_problems
    from nsr.passk import load_samples

    out = []
    for name, problems_path, sample_paths in test_sets:
        problems = read_problems(problems_path)
        by_method: dict[str, list[Path]] = {}
        for path in map(Path, sample_paths):
            by_method.setdefault(path.parent.name, []).append(path)
        for method, paths in by_method.items():
            samples = pd.concat([load_samples(p, extra_columns=("completion",)).assign(run=p.stem)
                                 for p in paths], ignore_index=True)
            summary = summarize(classify(problems, samples))
            out.append(summary.assign(test_set=name, method=method))
    table = pd.concat(out, ignore_index=True)
    return table[["test_set", "method", "question_type", *FORMS, "well_formed", "distinct_answers", "samples"]]


def markdown_table(table: pd.DataFrame) -> str:
    """Per test set: one row per method, one `correct / wrong / malformed % (distinct)` cell per question type."""
    lines = []
    for test_set, rows in table.groupby("test_set", sort=False):
        types = [ALL_TYPES] + sorted(t for t in rows["question_type"].unique() if t != ALL_TYPES)
        lines += [f"**{test_set}**: % of samples correct / well formed but wrong / malformed "
                  "(mean distinct answers per problem)", "",
                  "| method | " + " | ".join(types) + " |", "|---|" + "---:|" * len(types)]
        for method, group in rows.groupby("method", sort=False):
            cells = group.set_index("question_type")
            lines.append(f"| {method} | " + " | ".join(
                f"{100 * cells.loc[t, 'correct']:.1f} / {100 * cells.loc[t, 'wrong']:.1f} / "
                f"{100 * cells.loc[t, 'malformed']:.1f} ({cells.loc[t, 'distinct_answers']:.1f})"
                if t in cells.index else "" for t in types) + " |")
        lines.append("")
    return "\n".join(lines)
