"""A base judged before any RL, in minutes (benchmarks/base_prior.py; the screen's stage 0 does the
same through the DAG):

- its card (nsr.base_card) from samples it draws itself, as the study's sample jobs draw them (one
  samples file per seed, the study's sampling settings), so a base recipe is read as a study reads it;
- its exact prior per question type: the probability of the right answer + EOS from one
  teacher-forced pass (nsr.base.answer_logprob), Pass@1 at temperature 1 under exact matching with no
  sampling error, next to chance (a uniform guess among the well-formed answers,
  synthchart.answer_space): a type at chance has learned nothing of its content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

FRAGILE = (0.05, 0.01)
COLUMNS = ("question_type", "problems", "exact_pass_at_1", "chance", "fragile_5", "fragile_1")


def sample_card(model_dir: str | Path, problems: pd.DataFrame, problems_path: str | Path, samples_dir: str | Path,
                seeds: Sequence[int], sampling: dict, test_set: str = "test", num_threads: int | None = None):
    """The base card of ``model_dir`` on ``problems`` (written at ``problems_path``): one samples file per
    seed in ``samples_dir``/base/seed{seed}.parquet (reused when there), drawn with the study config's
    ``sampling`` block as the study's sample rule draws them."""
    from nsr.base_card import base_card
    from nsr.io import write_parquet
    from nsr.sampling import SamplingSettings, sample_to_file

    write_parquet(problems_path, problems)
    paths = []
    for seed in seeds:
        path = Path(samples_dir) / "base" / f"seed{seed}.parquet"
        if not path.exists():
            settings = SamplingSettings(sampling["num_samples"], sampling["temperature"], sampling["top_p"],
                                        sampling["max_new_tokens"], int(seed))
            sample_to_file(model_dir, problems, path, settings, backend="hf",
                           problems_per_call=sampling.get("problems_per_call"), num_threads=num_threads,
                           progress=False)
        paths.append(path)
    return base_card([(test_set, problems_path, paths)])


def per_problem(model_dir: str | Path, problems: pd.DataFrame, value_range: tuple[int, int],
                num_threads: int | None = None) -> pd.DataFrame:
    """One row per synthchart problem: question_type, exact p of the right answer, chance."""
    import torch

    from nsr.base import answer_logprob, load_pretrained
    from nsr.tasks.synthchart import answer_space
    from nsr.vlm import tokenizer_of

    if num_threads:
        torch.set_num_threads(num_threads)
    model, processing = load_pretrained(str(model_dir))
    exact = answer_logprob(model, tokenizer_of(processing), list(problems["prompt"]), list(problems["answer"])).exp()
    chance = [1 / answer_space(json.loads(table)["values"], qtype, value_range)
              for table, qtype in zip(problems["table"], problems["question_type"])]
    return pd.DataFrame({"problem_id": problems["problem_id"].to_numpy(),
                         "question_type": problems["question_type"].to_numpy(),
                         "exact_p": exact.numpy(), "chance": chance})


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per question type and ``all``: exact Pass@1, chance and exact fragile shares (p <= 5% / 1%), in %."""
    out = []
    for qtype, group in [*rows.groupby("question_type", sort=True), ("all", rows)]:
        out.append({"question_type": qtype, "problems": len(group),
                    "exact_pass_at_1": 100 * group["exact_p"].mean(), "chance": 100 * group["chance"].mean(),
                    "fragile_5": 100 * (group["exact_p"] <= FRAGILE[0]).mean(),
                    "fragile_1": 100 * (group["exact_p"] <= FRAGILE[1]).mean()})
    return pd.DataFrame(out, columns=list(COLUMNS))


def markdown(table: pd.DataFrame) -> str:
    header = ["question type", "problems", "exact Pass@1 %", "chance %", "exact p<=5% (%)", "exact p<=1% (%)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.itertuples(index=False):
        lines.append(f"| {row[0]} | {row[1]} | " + " | ".join(f"{v:.1f}" for v in row[2:]) + " |")
    return "\n".join(lines)
