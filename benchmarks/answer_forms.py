"""Well-formed vs malformed answers in a synthchart study's samples, per method and question type.

    python benchmarks/answer_forms.py [--results results]

For every samples file of a finished study (the study's test set and each extra test set) it
prints, per method (all seeds pooled) and question type: the share of samples that are correct,
the share that are well formed (nsr.tasks.synthchart.is_well_formed: a permutation of the table's
labels for rank, one label for max/min/2nd), and the mean number of distinct answers among one
seed's samples of a problem (256 by default).
Where the probability that training frees goes (plausible answers or malformed strings) is what
decides whether large-k Pass@k keeps up with the base (TOY-STUDY.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from nsr.tasks.synthchart import is_well_formed


def test_sets(results: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (problems parquet, samples folder) for the study's test set and every extra one."""
    found = {"test": (results / "data" / "test.parquet", results / "samples")}
    for folder in sorted((results / "test_sets").glob("*")):
        found[folder.name] = (folder / "data.parquet", folder / "samples")
    return found


def answer_forms(problems: pd.DataFrame, samples_dir: Path) -> pd.DataFrame:
    tables = {row.problem_id: json.loads(row.table)["values"] for row in problems.itertuples()}
    types = problems.set_index("problem_id")["question_type"]
    rows = []
    for method_dir in sorted(p for p in samples_dir.iterdir() if p.is_dir()):
        samples = pd.concat([pd.read_parquet(f).assign(run=f.stem) for f in sorted(method_dir.glob("seed*.parquet"))])
        answers = samples["extracted"].fillna("").astype(str) if "extracted" in samples else samples["completion"]
        samples = samples.assign(
            answer_text=answers.str.strip(),
            question_type=samples["problem_id"].map(types),
            well_formed=[is_well_formed(tables[pid], types[pid], a) for pid, a in zip(samples["problem_id"], answers)],
        )
        distinct = (samples.groupby(["question_type", "problem_id", "run"])["answer_text"].nunique()
                    .groupby("question_type").mean())
        summary = samples.groupby("question_type").agg(correct=("correct", "mean"), well_formed=("well_formed", "mean"))
        summary["distinct_answers"] = distinct
        rows.append(summary.reset_index().assign(method=method_dir.name))
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="the study's results folder")
    args = parser.parse_args()
    for name, (problems_path, samples_dir) in test_sets(Path(args.results)).items():
        problems = pd.read_parquet(problems_path)
        if "question_type" not in problems or "table" not in problems:
            raise SystemExit(f"{problems_path}: not a synthchart problem file (no question_type / table column)")
        table = answer_forms(problems, samples_dir)
        wide = table.pivot(index="method", columns="question_type", values=["correct", "well_formed", "distinct_answers"])
        print(f"### {name}: share correct / share well formed / distinct answers per problem, by question type\n")
        columns = sorted(table["question_type"].unique())
        print("| method | " + " | ".join(columns) + " |")
        print("|---|" + "---:|" * len(columns))
        for method in wide.index:
            cells = [f"{wide.loc[method, ('correct', q)]:.3f} / {wide.loc[method, ('well_formed', q)]:.3f} / "
                     f"{wide.loc[method, ('distinct_answers', q)]:.1f}" for q in columns]
            print(f"| {method} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
