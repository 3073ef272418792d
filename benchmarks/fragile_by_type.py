"""Where each method gains or loses the base's fragile problems, by question type: a finished study's samples.

    python benchmarks/fragile_by_type.py results
    python benchmarks/fragile_by_type.py benchmarks/out/screen/issue27/*/s2025/results --threshold 0.05

Fragile: the base's success rate (its own samples, all seeds pooled) <= --threshold. Per question type and
method (means over training seeds): the fragile problems solved at least once in n (%), their mean success
(%), and the share of samples giving the base's most frequent wrong answer on them (the wrong mode
sharpening amplifies). A letter question has 4-7 answers, a ranking one n!: pushing sampled wrong answers
down (NSR) spreads the mass over few alternatives on the first, many on the second.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

METHODS = ("base", "grpo", "psr", "nsr", "w-reinforce")


def per_seed(results: Path, method: str) -> list[pd.DataFrame]:
    files = sorted((results / "samples" / method).glob("seed*.parquet"))
    if not files:
        raise SystemExit(f"{results / 'samples' / method}: no seed*.parquet (is the study finished?)")
    return [pd.read_parquet(path, columns=["problem_id", "extracted", "correct"]) for path in files]


def fragile_table(results: Path, threshold: float) -> pd.DataFrame:
    types = pd.read_parquet(results / "data" / "test.parquet", columns=["problem_id", "question_type"])
    base = pd.concat(per_seed(results, "base"))
    success = base.groupby("problem_id")["correct"].mean()
    fragile = success[success <= threshold].index
    wrong = base[~base["correct"] & base["problem_id"].isin(fragile)]
    wrong_mode = wrong.groupby("problem_id")["extracted"].agg(lambda a: a.value_counts().index[0])
    rows = []
    for method in METHODS:
        if not (results / "samples" / method).is_dir():
            continue
        for seed, samples in enumerate(per_seed(results, method)):
            samples = samples[samples["problem_id"].isin(fragile)]
            by_problem = samples.groupby("problem_id").agg(solved=("correct", "any"), success=("correct", "mean"))
            by_problem["wrong_mode"] = samples.groupby("problem_id")["extracted"].apply(list).to_frame().apply(
                lambda row: pd.Series(row.iloc[0]).eq(wrong_mode.get(row.name)).mean(), axis=1)
            by_problem = by_problem.join(types.set_index("problem_id"))
            for question_type, group in [*by_problem.groupby("question_type"), ("all", by_problem)]:
                rows.append({"method": method, "seed": seed, "question_type": question_type, "problems": len(group),
                             "solved": 100 * group["solved"].mean(), "success": 100 * group["success"].mean(),
                             "wrong_mode": 100 * group["wrong_mode"].mean()})
    frame = pd.DataFrame(rows).groupby(["question_type", "method"], sort=False).mean(numeric_only=True)
    return frame.drop(columns="seed").reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="a finished study's results/ folder")
    parser.add_argument("--threshold", type=float, default=0.05, help="fragile: base success rate at most this")
    args = parser.parse_args()
    for results in args.results:
        table = fragile_table(results, args.threshold)
        wide = table.pivot(index="question_type", columns="method", values=["solved", "success", "wrong_mode"])
        problems = table.groupby("question_type")["problems"].first()
        print(f"\n{results}: fragile problems (base p <= {args.threshold:g}) solved in n % | mean success % | "
              "base's wrong mode %")
        for question_type in wide.index:
            cells = " | ".join(f"{m} {wide.loc[question_type, ('solved', m)]:.0f} / "
                               f"{wide.loc[question_type, ('success', m)]:.2f} / "
                               f"{wide.loc[question_type, ('wrong_mode', m)]:.0f}"
                               for m in METHODS if ("solved", m) in wide.columns)
            print(f"  {question_type:>7} ({problems[question_type]:.0f}): {cells}")


if __name__ == "__main__":
    main()
