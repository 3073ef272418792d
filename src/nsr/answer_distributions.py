"""Answer distributions of the fragile problems: where each method moved the base's probability mass.

The paper (section 4) explains the large-k results by what training does to one problem's answer
distribution: NSR pushes the sampled wrong answers down and the freed mass spreads by the prior
(onto the rare right answer among others), PSR concentrates the mass on what the policy already
samples most. That is visible on the problems the base rarely solves, the fragile ones (base
success rate p <= 5%: nsr.coverage's FRAGILE_BINS, all base seeds pooled), next to a few easy
ones for contrast. Per selected problem and method (all its seeds pooled) each sample is one of

    right             the samples file's ``correct``
    base_wrong_1..3   the base's own most frequent well-formed wrong answers on the problem
                      (extracted answer texts of nsr.forms.classify, all base seeds pooled):
                      most samples first, ties by answer text
    other_wrong       any other well-formed wrong answer
    malformed         not a possible answer (nsr.forms' form)

so the shares of a (problem, method) sum to 1. Which problems (SELECTIONS):

    fragile   every problem whose pooled base p falls in FRAGILE_BINS
    easy      the EASY_PROBLEMS problems of the EASY_BIN bin whose base p is nearest the bin's
              median p (exact fractions), ties by problem_id (fewer when the bin has fewer)

The table (COLUMNS) has one row per (test_set, problem_id, method, category), problems fragile
first, each selection by base p then problem_id, methods in the given order with the base
first, every category a row so each (problem, method) block has one shape: where the base has
fewer than i distinct wrong answers, base_wrong_i has an empty answer and share 0.
``base_success`` and ``share`` are fractions in [0, 1]; ``samples`` counts the method's samples
(all seeds) in the category; ``question_type`` is empty for a task without types.

This module only counts; nsr.plotting draws the figure and nsr.answer_distributions_cli is the
`nsr answers` command (imports run one way: answer_distributions_cli -> plotting -> here).
"""

from __future__ import annotations

import json
import statistics
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from nsr.coverage import BASE_METHOD, BINS, FRAGILE_BINS, difficulty_bin, samples_by_method
from nsr.io import InputError
from nsr.passk import counts_per_problem

TOP_WRONG = 3
CATEGORIES = ("right", *(f"base_wrong_{i}" for i in range(1, TOP_WRONG + 1)), "other_wrong", "malformed")
SELECTIONS = ("fragile", "easy")
EASY_BIN = BINS[-1]  # (20,100%]
EASY_PROBLEMS = 3
COLUMNS = ("test_set", "selection", "problem_id", "question_type", "prompt", "right_answer", "base_success",
           "difficulty_bin", "method", "category", "answer", "share", "samples")


def select_problems(base_counts: pd.DataFrame) -> pd.DataFrame:
    """The selected problems from the base's pooled counts (problem_id, n, c): rows problem_id,
    selection, base_success (float), difficulty_bin, in table order (see the module docstring)."""
    pooled = base_counts.groupby("problem_id", sort=True)[["n", "c"]].sum()
    success = {pid: Fraction(int(c), int(n)) for pid, n, c in zip(pooled.index, pooled["n"], pooled["c"])}
    bins = {pid: difficulty_bin(int(c), int(n)) for pid, n, c in zip(pooled.index, pooled["n"], pooled["c"])}
    fragile = [pid for pid in success if bins[pid] in FRAGILE_BINS]
    easy_pool = [pid for pid in success if bins[pid] == EASY_BIN]
    easy = []
    if easy_pool:
        median = statistics.median(success[pid] for pid in easy_pool)
        easy = sorted(easy_pool, key=lambda pid: (abs(success[pid] - median), pid))[:EASY_PROBLEMS]
    rows = [{"problem_id": pid, "selection": selection, "base_success": float(success[pid]),
             "difficulty_bin": bins[pid]}
            for selection, chosen in zip(SELECTIONS, (fragile, easy))
            for pid in sorted(chosen, key=lambda pid: (success[pid], pid))]
    return pd.DataFrame(rows, columns=["problem_id", "selection", "base_success", "difficulty_bin"])


def base_top_wrong(classified_base: pd.DataFrame, top: int = TOP_WRONG) -> dict[str, list[str]]:
    """problem_id -> the base's ``top`` most frequent well-formed wrong answer texts (form ``wrong``
    of nsr.forms.classify), most samples first, ties by answer text; problems without one absent."""
    wrong = classified_base[classified_base["form"] == "wrong"]
    counts = wrong.groupby(["problem_id", "answer_text"]).size().reset_index(name="count")
    counts = counts.sort_values(["problem_id", "count", "answer_text"], ascending=[True, False, True])
    return counts.groupby("problem_id").head(top).groupby("problem_id", sort=True)["answer_text"].agg(list).to_dict()


def categories(classified: pd.DataFrame, top_wrong: Mapping[str, Sequence[str]]) -> pd.Series:
    """Each classified sample's category (CATEGORIES) given the base's top wrong answers per problem."""
    rank = {(pid, text): i for pid, texts in top_wrong.items() for i, text in enumerate(texts, 1)}
    out = []
    for pid, text, form in zip(classified["problem_id"], classified["answer_text"], classified["form"]):
        if form == "correct":
            out.append("right")
        elif form == "malformed":
            out.append("malformed")
        else:
            i = rank.get((pid, text))
            out.append(f"base_wrong_{i}" if i else "other_wrong")
    return pd.Series(out, index=classified.index, name="category")


def _prompt_text(prompt) -> str:
    """A prompt as one CSV cell: text as is, chat messages (a VLM task's) as JSON."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


def distribution_rows(test_set: str, problems: pd.DataFrame, runs: Mapping[str, pd.DataFrame],
                      base: str = BASE_METHOD) -> pd.DataFrame:
    """One test set's rows. ``runs``: method -> its samples, all seeds pooled (problem_id, correct,
    completion), the base among them; ``problems``: the test set's rows (nsr.data.read_problems)."""
    from nsr.forms import classify  # the task's well-formedness check (synthchart) only when counting

    selected = select_problems(counts_per_problem(runs[base]))
    # only the selected problems' samples are classified (a few % of a study's)
    chosen = set(selected["problem_id"])
    classified = {method: classify(problems, samples[samples["problem_id"].isin(chosen)])
                  for method, samples in runs.items()}
    top_wrong = base_top_wrong(classified[base])
    info = problems.set_index("problem_id")
    methods = [base, *(m for m in runs if m != base)]
    counts = {m: pd.DataFrame({"problem_id": classified[m]["problem_id"],
                               "category": categories(classified[m], top_wrong)}).value_counts().to_dict()
              for m in methods}
    rows = []
    for problem in selected.itertuples(index=False):
        pid = problem.problem_id
        answers = {"right": info.loc[pid, "answer"],
                   **{f"base_wrong_{i}": text for i, text in enumerate(top_wrong.get(pid, []), 1)}}
        common = {"test_set": test_set, "selection": problem.selection, "problem_id": pid,
                  "question_type": info.loc[pid, "question_type"] if "question_type" in info else "",
                  "prompt": _prompt_text(info.loc[pid, "prompt"]), "right_answer": info.loc[pid, "answer"],
                  "base_success": problem.base_success, "difficulty_bin": problem.difficulty_bin}
        for method in methods:
            tally = [counts[method].get((pid, category), 0) for category in CATEGORIES]
            total = sum(tally)
            rows += [{**common, "method": method, "category": category, "answer": answers.get(category, ""),
                      "share": count / total, "samples": count} for category, count in zip(CATEGORIES, tally)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def answer_distributions(test_sets: Sequence[tuple[str, str | Path, Sequence[str | Path]]],
                         base: str = BASE_METHOD) -> pd.DataFrame:
    """The CSV: (test set name, problems parquet, samples files) per test set, in the given order; a
    samples file's folder names its method, a method's files (seeds) are pooled; every file must
    hold the problems of the base's first (nsr.coverage.samples_by_method)."""
    from nsr.data import read_problems

    blocks = []
    for name, problems_path, sample_paths in test_sets:
        problems = read_problems(problems_path)
        by_method = samples_by_method(sample_paths, base, extra_columns=("completion",))
        reference_path, reference = by_method[base][0]
        unknown = sorted(set(reference["problem_id"]) - set(problems["problem_id"]))
        if unknown:
            raise InputError(f"samples file {reference_path}: {len(unknown)} of its problems are not in the "
                             f"problems file {problems_path}, e.g. {unknown[0]!r}")
        runs = {method: pd.concat([samples for _, samples in seeds], ignore_index=True)
                for method, seeds in by_method.items()}
        blocks.append(distribution_rows(name, problems, runs, base))
    return pd.concat(blocks, ignore_index=True)
