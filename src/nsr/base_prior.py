"""A base's prior per question type, measured cheaply (benchmarks/base_prior.py; the screen's
way to choose bases before training anything).

- exact Pass@1: the probability of the right answer + EOS, from one teacher-forced pass
  (nsr.base.answer_logprob): Pass@1 at temperature 1 under exact matching, with no sampling error;
- chance: the Pass@1 of a uniform guess among the well-formed answers (synthchart.answer_space),
  so a type at chance has learned nothing of its content;
- fragile: the share of problems with exact p <= 5% and <= 1%: where the right answer lies in the
  base's tail, the problems whose coverage RL can gain or lose at large k;
- malformed, sampled Pass@1: from a modest number of samples per problem (nsr.sampling), the
  share of samples that are no possible answer, and the share the task scores correct.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd

FRAGILE = (0.05, 0.01)
COLUMNS = ("question_type", "problems", "exact_pass_at_1", "chance", "fragile_5", "fragile_1", "malformed",
           "sampled_pass_at_1")


def per_problem(model_dir: str | Path, problems: pd.DataFrame, value_range: tuple[int, int],
                num_samples: int = 16, max_new_tokens: int = 16, seed: int = 0,
                num_threads: int | None = None) -> pd.DataFrame:
    """One row per synthchart problem: question_type, exact p, chance, malformed and correct sample shares."""
    import torch

    from nsr.base import answer_logprob, load_pretrained
    from nsr.forms import classify
    from nsr.sampling import SamplingSettings, sample_to_file
    from nsr.tasks.synthchart import answer_space
    from nsr.vlm import tokenizer_of

    if num_threads:
        torch.set_num_threads(num_threads)
    model, processing = load_pretrained(str(model_dir))
    exact = answer_logprob(model, tokenizer_of(processing), list(problems["prompt"]), list(problems["answer"])).exp()
    chance = [1 / answer_space(json.loads(table)["values"], qtype, value_range)
              for table, qtype in zip(problems["table"], problems["question_type"])]
    with tempfile.TemporaryDirectory() as tmp:
        samples = sample_to_file(model_dir, problems, Path(tmp) / "samples.parquet",
                                 SamplingSettings(num_samples, 1.0, 1.0, max_new_tokens, seed), backend="hf",
                                 num_threads=num_threads, progress=False)
    forms = classify(problems, samples).groupby("problem_id")["form"]
    return pd.DataFrame({
        "problem_id": problems["problem_id"].to_numpy(),
        "question_type": problems["question_type"].to_numpy(),
        "exact_p": exact.numpy(),
        "chance": chance,
        "malformed": forms.apply(lambda f: (f == "malformed").mean()).loc[problems["problem_id"]].to_numpy(),
        "correct": forms.apply(lambda f: (f == "correct").mean()).loc[problems["problem_id"]].to_numpy(),
    })


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per question type and ``all``: the means of per_problem's columns (COLUMNS), shares in %."""
    out = []
    for qtype, group in [*rows.groupby("question_type", sort=True), ("all", rows)]:
        out.append({"question_type": qtype, "problems": len(group),
                    "exact_pass_at_1": 100 * group["exact_p"].mean(), "chance": 100 * group["chance"].mean(),
                    "fragile_5": 100 * (group["exact_p"] <= FRAGILE[0]).mean(),
                    "fragile_1": 100 * (group["exact_p"] <= FRAGILE[1]).mean(),
                    "malformed": 100 * group["malformed"].mean(), "sampled_pass_at_1": 100 * group["correct"].mean()})
    return pd.DataFrame(out, columns=list(COLUMNS))


def markdown(table: pd.DataFrame) -> str:
    header = ["question type", "problems", "exact Pass@1 %", "chance %", "fragile p<=5% (%)", "fragile p<=1% (%)",
              "malformed %", "sampled Pass@1 %"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.itertuples(index=False):
        lines.append(f"| {row[0]} | {row[1]} | " + " | ".join(f"{v:.1f}" for v in row[2:]) + " |")
    return "\n".join(lines)
