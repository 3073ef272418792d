"""Where each method gains or loses the base's fragile problems, by question type: a finished study's samples.

    python benchmarks/fragile_by_type.py results
    python benchmarks/fragile_by_type.py benchmarks/out/screen/issue27/*/s2025/results

Fragile: the base's success rate <= 5% (its own samples, all seeds pooled: nsr.coverage's bins, as in
the difficulty table and the card). Per question type and method (means over training seeds): the
fragile problems solved at least once in n (%), their mean success (%), and the share of samples giving
the base's most frequent well-formed wrong answer (nsr.answer_distributions.base_top_wrong: the wrong
mode sharpening amplifies). A letter question has 4-7 answers, a ranking one n!: pushing sampled wrong
answers down (NSR) spreads the mass over few alternatives on the first, many on the second.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from nsr.answer_distributions import base_top_wrong
from nsr.coverage import BASE_METHOD, FRAGILE_BINS, difficulty_bins, samples_by_method
from nsr.forms import classify
from nsr.passk import counts_per_problem


def fragile_table(results: Path) -> pd.DataFrame:
    """Rows (question_type incl. ``all``, method, problems, solved, success, wrong_mode) in %."""
    paths = sorted((results / "samples").glob("*/seed*.parquet"))
    runs = samples_by_method(paths, extra_columns=("completion",))
    bins = difficulty_bins([counts_per_problem(samples) for _, samples in runs[BASE_METHOD]])
    fragile = bins[bins.isin(FRAGILE_BINS)].index
    problems = pd.read_parquet(results / "data" / "test.parquet")
    problems = problems[problems["problem_id"].isin(fragile)]
    classified = {method: [classify(problems, samples[samples["problem_id"].isin(fragile)]) for _, samples in seeds]
                  for method, seeds in runs.items()}
    wrong_mode = {pid: texts[0] for pid, texts in base_top_wrong(pd.concat(classified[BASE_METHOD])).items()}
    rows = []
    for method, seeds in classified.items():
        for seed, samples in enumerate(seeds):
            samples = samples.assign(is_mode=samples["answer_text"] == samples["problem_id"].map(wrong_mode))
            by_problem = samples.groupby("problem_id").agg(
                question_type=("question_type", "first"), solved=("correct", "any"), success=("correct", "mean"),
                wrong_mode=("is_mode", "mean"))
            for question_type, group in [*by_problem.groupby("question_type"), ("all", by_problem)]:
                rows.append({"method": method, "seed": seed, "question_type": question_type, "problems": len(group),
                             **{k: 100 * group[k].mean() for k in ("solved", "success", "wrong_mode")}})
    frame = pd.DataFrame(rows).groupby(["question_type", "method"], sort=False).mean(numeric_only=True)
    return frame.drop(columns="seed").reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="a finished study's results/ folder")
    args = parser.parse_args()
    for results in args.results:
        table = fragile_table(results)
        print(f"\n{results}: fragile problems (base p <= 5%): solved in n % / mean success % / base's wrong mode %")
        for question_type, rows in table.groupby("question_type", sort=False):
            cells = " | ".join(f"{r.method} {r.solved:.0f} / {r.success:.2f} / {r.wrong_mode:.0f}"
                               for r in rows.itertuples())
            print(f"  {question_type:>7} ({rows['problems'].iloc[0]:.0f}): {cells}")


if __name__ == "__main__":
    main()
