"""The base card: a base model read the way the paper's base can be read, from its own samples.

Before any RL, three properties of the base decide whether the comparison can show the paper's
shape (docs/embedded-study.md): it is **skilled** (its most frequent answer is right on most
problems), **sharpenable** (that mode is right far more often than one sample is, so sharpening
alone lifts Pass@1) and it **leaves fragile problems of the same kind** as the easy ones (right
answers rare but present, where sharpening learnt elsewhere can lose them). The paper's base
(Qwen2.5-Math-7B on MATH) has all three: Pass@1 63.2, RL to 76 at k = 1, a few % of problems
unsolved at k = 256.

Per test set and question type (where the problems have a ``question_type`` column) and ``all``,
from the base's samples of every base seed pooled (n per seed, S seeds: S x n per problem):

    problems          test problems in the row
    n                 samples per problem in one seed's file (the k of pass_at_n)
    pass1             mean per-problem success rate (correct / samples, seeds pooled), %
    pass_at_n         Pass@n, % (mean over seeds: a problem counts when its seed's n samples hold a
                      right one), what S5 of nsr.paper_shape reads
    mode_right        % of problems whose most frequent extracted answer is right (MODE_TIES: ties)
    headroom          mode_right - pass1: what sharpening alone can add at k = 1
    fragile_5         % of problems at success rate <= 5% (unsolved ones included)
    fragile_1         % of problems at success rate <= 1%
    solved            % of problems with at least one right sample (seeds pooled)
    malformed         % of samples that are no possible answer (nsr.forms)
    distinct_answers  mean distinct extracted answers per problem among one seed's n samples

The thresholds share nsr.coverage's integer edges (100 c <= 5 n), so fragile_5 counts exactly the
problems of coverage_by_difficulty's fragile bins. ``card_checks`` says whether a card is the
paper's kind of base (CARD_TARGETS), the screen's stage 0 reads it; ``nsr card`` writes
results/base_card.csv and .md.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from pathlib import Path
from typing import Sequence

import pandas as pd

from nsr.cli import add_test_set_flags, test_set_groups
from nsr.io import InputError, atomic_path
from nsr.paper_shape import S5_PASS_AT_1, S5_PASS_AT_N_MAX

ALL_TYPES = "all"
COLUMNS = ("test_set", "question_type", "problems", "n", "pass1", "pass_at_n", "mode_right", "headroom",
           "fragile_5", "fragile_1", "solved", "malformed", "distinct_answers")
# Ties at the top of a problem's answer counts: the problem counts the share of the tied answers that
# are right (the expected accuracy of a majority vote that breaks ties uniformly at random), so a
# tie between the right answer and one wrong one counts 1/2.
MODE_TIES = "uniform"
FRAGILE = {"fragile_5": 5, "fragile_1": 1}  # % of samples, inclusive (100 c <= edge n)
# The card of a paper-like base (issue 27): skilled and sharpenable, fragile problems of more than one
# kind, well formed, with room both ways (S5's bounds, anchored to the paper's base).
CARD_TARGETS = {"mode_right": 60.0, "headroom": 10.0, "fragile_5": 10.0, "spread_share": 20.0, "malformed": 3.0}
CARD_CHECKS = ("mode", "headroom", "fragile", "spread", "malformed", "room")  # card_checks' names, in order


def mode_right(answers: Sequence[str], right: Sequence[bool]) -> float:
    """1 when the most frequent answer is right, 0 when wrong; a tie at the top counts the share of the
    tied answers that are right (MODE_TIES). ``right[i]`` says whether sample i (answer ``answers[i]``)
    is correct; an answer is right when its samples are (a majority of them, should scoring differ)."""
    counts = Counter(answers)
    top = max(counts.values())
    tied = [answer for answer, count in counts.items() if count == top]
    votes: dict[str, list[int]] = {}
    for answer, ok in zip(answers, right):
        votes.setdefault(answer, [0, 0])[bool(ok)] += 1
    return sum(votes[a][1] > votes[a][0] for a in tied) / len(tied)


def per_problem(classified: pd.DataFrame) -> pd.DataFrame:
    """One row per problem from classified samples (nsr.forms.classify plus a ``run`` column naming the
    seed's file): question_type, samples, correct, n (one run's samples), solved_per_run (mean over runs
    of "a right sample in the run"), mode_right, malformed (samples), distinct (mean over runs)."""
    rows = []
    for pid, group in classified.groupby("problem_id", sort=True):
        runs = group.groupby("run", sort=True)
        sizes = runs.size()
        if sizes.nunique() != 1:
            raise InputError(f"problem {pid!r}: its samples files hold different numbers of samples "
                             f"({dict(sizes)}): the base's seeds must draw the same n")
        rows.append({
            "problem_id": pid,
            "question_type": group["question_type"].iloc[0],
            "samples": len(group),
            "correct": int(group["correct"].sum()),
            "n": int(sizes.iloc[0]),
            "solved_per_run": float(runs["correct"].any().mean()),
            "mode_right": mode_right(group["answer_text"].tolist(), group["correct"].tolist()),
            "malformed": int((group["form"] == "malformed").sum()),
            "distinct": float(runs["answer_text"].nunique().mean()),
        })
    return pd.DataFrame(rows)


def card_rows(problems: pd.DataFrame) -> pd.DataFrame:
    """The card (COLUMNS but test_set) per question type, then ``all``, from ``per_problem``'s rows."""
    typed = set(problems["question_type"]) != {ALL_TYPES}  # nsr.forms names every problem "all" without types
    groups = [*problems.groupby("question_type", sort=True)] if typed else []
    out = []
    for qtype, group in [*groups, (ALL_TYPES, problems)]:
        success = group["correct"] / group["samples"]
        pass1, mode = 100 * success.mean(), 100 * group["mode_right"].mean()
        row = {"question_type": qtype, "problems": len(group), "n": int(group["n"].max()), "pass1": pass1,
               "pass_at_n": 100 * group["solved_per_run"].mean(), "mode_right": mode, "headroom": mode - pass1}
        for name, edge in FRAGILE.items():
            row[name] = 100 * float((100 * group["correct"] <= edge * group["samples"]).mean())
        row.update(solved=100 * float((group["correct"] > 0).mean()),
                   malformed=100 * group["malformed"].sum() / group["samples"].sum(),
                   distinct_answers=float(group["distinct"].mean()))
        out.append(row)
    return pd.DataFrame(out)


def base_card(test_sets: Sequence[tuple[str, str | Path, Sequence[str | Path]]]) -> pd.DataFrame:
    """The card of every test set: (name, problems parquet, the base's samples files, one per seed)."""
    from nsr.data import read_problems
    from nsr.forms import ALL_TYPES as NO_TYPE, classify
    from nsr.passk import load_samples

    blocks = []
    for name, problems_path, sample_paths in test_sets:
        if not sample_paths:
            raise InputError(f"test set {name!r}: no samples files of the base")
        problems = read_problems(problems_path)
        samples = []
        for path in map(Path, sample_paths):
            frame = load_samples(path, extra_columns=("completion",))
            missing = sorted(set(problems["problem_id"].astype(str)) - set(frame["problem_id"]))
            if missing:
                raise InputError(f"samples file {path}: no samples of {len(missing)} problem(s) of {problems_path}, "
                                 f"e.g. {missing[0]!r}")
            samples.append(frame.assign(run=str(path)))
        classified = classify(problems, pd.concat(samples, ignore_index=True))
        classified["question_type"] = classified["question_type"].fillna(NO_TYPE)
        blocks.append(card_rows(per_problem(classified)).assign(test_set=name))
    return pd.concat(blocks, ignore_index=True)[list(COLUMNS)]


def fragile_types(card: pd.DataFrame, test_set: str) -> dict[str, int]:
    """question type -> fragile problems (base p <= 5%) on one test set, from the card's rows."""
    rows = card[(card["test_set"] == test_set) & (card["question_type"] != ALL_TYPES)]
    return {q: int(round(f * p / 100)) for q, f, p in zip(rows["question_type"], rows["fragile_5"], rows["problems"])
            if not math.isnan(f) and round(f * p / 100)}


def card_checks(card: pd.DataFrame, test_set: str | None = None) -> list[tuple[str, bool | None, str]]:
    """(name, holds, detail) of the paper-like base's card on one test set (the first one by default):

        mode       mode_right >= 60: skilled, the base's mode is right on most problems
        headroom   headroom >= 10: sharpening alone has something to add at k = 1
        fragile    fragile_5 >= 10% of the problems
        spread     at least two question types hold >= 20% of the fragile problems each (None, "n/a",
                   when the problems have no question types)
        malformed  <= 3% of the samples
        room       S5 of nsr.paper_shape: pass1 in [10, 70] and pass_at_n <= 97
    """
    test_set = card["test_set"].iloc[0] if test_set is None else test_set
    rows = card[card["test_set"] == test_set].set_index("question_type")
    if ALL_TYPES not in rows.index:
        raise InputError(f"base card: no row for test set {test_set!r}")
    overall, by_type = rows.loc[ALL_TYPES], rows.drop(index=ALL_TYPES)
    t = CARD_TARGETS
    checks = [
        ("mode", overall["mode_right"] >= t["mode_right"], f"mode_right {overall['mode_right']:.1f} (>= {t['mode_right']:g})"),
        ("headroom", overall["headroom"] >= t["headroom"], f"headroom {overall['headroom']:.1f} (>= {t['headroom']:g})"),
        ("fragile", overall["fragile_5"] >= t["fragile_5"], f"fragile_5 {overall['fragile_5']:.1f}% (>= {t['fragile_5']:g})"),
    ]
    if len(by_type):
        fragile = fragile_types(card, test_set)
        total = sum(fragile.values())
        wide = [q for q, count in fragile.items() if 100 * count >= t["spread_share"] * total]
        detail = ", ".join(f"{q} {count}" for q, count in fragile.items()) or "none"
        checks.append(("spread", total > 0 and len(wide) >= 2,
                       f"fragile problems by type: {detail} (>= {t['spread_share']:g}% of them in 2 types)"))
    else:
        checks.append(("spread", None, "n/a: the problems have no question types"))
    checks += [
        ("malformed", overall["malformed"] <= t["malformed"], f"malformed {overall['malformed']:.1f}% (<= {t['malformed']:g})"),
        ("room", S5_PASS_AT_1[0] <= overall["pass1"] <= S5_PASS_AT_1[1] and overall["pass_at_n"] <= S5_PASS_AT_N_MAX,
         f"pass1 {overall['pass1']:.1f} in [{S5_PASS_AT_1[0]:g}, {S5_PASS_AT_1[1]:g}], "
         f"pass@{int(overall['n'])} {overall['pass_at_n']:.1f} (<= {S5_PASS_AT_N_MAX:g})"),
    ]
    return [(name, None if ok is None else bool(ok), detail) for name, ok, detail in checks]


def markdown(card: pd.DataFrame) -> str:
    """Per test set: the card as a table (shares in %), then which targets it meets."""
    header = ["question type", "problems", "pass1", "pass@n", "mode right", "headroom", "fragile ≤5%",
              "fragile ≤1%", "solved", "malformed", "distinct"]
    lines = []
    for test_set, rows in card.groupby("test_set", sort=False):
        n = int(rows["n"].max())
        lines += [f"**{test_set}**: the base's own samples, all seeds pooled (n = {n} per seed; % of problems, "
                  "malformed in % of samples)", "",
                  "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        for r in rows.itertuples(index=False):
            lines.append(f"| {r.question_type} | {r.problems} | " + " | ".join(
                f"{v:.1f}" for v in (r.pass1, r.pass_at_n, r.mode_right, r.headroom, r.fragile_5, r.fragile_1,
                                     r.solved, r.malformed, r.distinct_answers)) + " |")
        checks = card_checks(card, test_set)
        held = sum(ok is True for _, ok, _ in checks)
        applicable = sum(ok is not None for _, ok, _ in checks)
        lines += ["", f"Paper-like base: {held} of {applicable} targets met"]
        lines += [f"- {name}: {'n/a' if ok is None else 'meets' if ok else 'misses'} ({detail})"
                  for name, ok, detail in checks]
        lines.append("")
    return "\n".join(lines)


def write_card(card: pd.DataFrame, output: str | Path) -> None:
    """``output`` (.csv) and the .md next to it, each written atomically."""
    output = Path(output)
    with atomic_path(output.with_suffix(".csv")) as tmp:
        card.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(output.with_suffix(".md")) as tmp:
        tmp.write_text(markdown(card))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_test_set_flags(parser, ["PROBLEMS"], "its problems parquet, then the base's samples files (one per seed)")


def run(args: argparse.Namespace) -> None:
    output = Path(args.output)
    if output.suffix != ".csv":
        raise InputError(f"--output {args.output}: the card is a .csv (its .md goes next to it)")
    card = base_card(test_set_groups(args.sets, ["PROBLEMS"]))
    write_card(card, output)
    print(markdown(card))
