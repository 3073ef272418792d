"""The difficulty of an order question, its systematic near miss, and a teacher that fails where it is hard.

Difficulty d of a max / min / 2nd / rank / top3 question (``order_gap``): the smallest gap
between two values whose order the answer depends on, in the table's own value units. With the
values sorted largest first (v1 > v2 > ... > vn): max d = v1 - v2, min d = v(n-1) - vn, 2nd
d = min(v1 - v2, v2 - v3), rank the smallest adjacent gap, top3 the smallest adjacent gap among
the first four (a table of n <= 3: its whole order). Its *closest pair* is the adjacent pair at
that gap (on equal gaps the larger values'), and the *near miss* (``near_miss``) is the answer
with that pair swapped: the second largest label for max, the second smallest for min, the
largest or the third for 2nd, the closest adjacent pair swapped for rank and top3 (a 3rd and 4th
swapped: the 4th in place of the 3rd). It is always well formed and never the right answer.

The difficulty teacher (``Teacher(difficulty="gap")``, nsr.teacher) is right on an order question
with probability ``gap_accuracy(d) * decay ** (n - 2)``: ``accuracy`` for d >= easy_gap,
``hard_accuracy`` for d <= hard_gap, linear in between, so table size (``decay``) is a second
difficulty axis. When wrong it gives the near miss with probability ``systematic`` and otherwise
another wrong answer (``spread_miss``). So hard problems get one wrong mode and a rare right
answer, while easy ones stay mostly right. Numeric questions keep the noisy teacher.
"""

from __future__ import annotations

import json
import random

from nsr.tasks.synthchart import compute_answer
from nsr.teacher.blind import BLIND_SPOTS, ORDER_QUESTIONS, blind_view
from nsr.teacher.noise import noisy_answer

DIFFICULTIES = ("none", "gap")  # none: the noisy teacher; gap: accuracy falls with order_gap


def _pairs(n: int, qtype: str) -> range:
    """Adjacent pairs (i, i + 1) of the largest-first order whose order the answer depends on."""
    if n < 2 or qtype not in ORDER_QUESTIONS:
        return range(0)
    return {"max": range(1), "min": range(n - 2, n - 1), "second": range(min(2, n - 1)),
            "rank": range(n - 1), "top3": range(min(3, n - 1))}[qtype]


def _order(table: dict) -> list[str]:
    return sorted(table, key=table.get, reverse=True)


def closest_pair(table: dict[str, int], qtype: str) -> int | None:
    """Position i of the closest pair (i, i + 1) in the largest-first order; None for a numeric question."""
    values = sorted(table.values(), reverse=True)
    pairs = _pairs(len(table), qtype)
    return min(pairs, key=lambda i: values[i] - values[i + 1]) if pairs else None


def order_gap(table: dict[str, int], qtype: str) -> float | None:
    """Difficulty d of an order question (module docstring); None for a numeric question."""
    i = closest_pair(table, qtype)
    if i is None:
        return None
    values = sorted(table.values(), reverse=True)
    return values[i] - values[i + 1]


def _swapped(order: list[str], qtype: str, i: int) -> str:
    """The answer an order gives with positions i and i + 1 swapped."""
    order = list(order)
    order[i], order[i + 1] = order[i + 1], order[i]
    return {"max": order[0], "min": order[-1], "second": order[min(1, len(order) - 1)],
            "rank": "".join(order), "top3": "".join(order[:3])}[qtype]


def near_miss(table: dict[str, int], qtype: str) -> str | None:
    """The systematic wrong answer of an order question: its closest pair swapped; None for a numeric one."""
    i = closest_pair(table, qtype)
    return None if i is None else _swapped(_order(table), qtype, i)


def gap_accuracy(gap: float, easy_accuracy: float, hard_accuracy: float, hard_gap: float, easy_gap: float) -> float:
    """a(d): ``easy_accuracy`` for d >= easy_gap, ``hard_accuracy`` for d <= hard_gap, linear in between."""
    if gap >= easy_gap:
        return easy_accuracy
    if gap <= hard_gap:
        return hard_accuracy
    return hard_accuracy + (easy_accuracy - hard_accuracy) * (gap - hard_gap) / (easy_gap - hard_gap)


def spread_miss(table: dict[str, int], qtype: str, rng: random.Random, noise: float, near: str) -> str:
    """A wrong answer other than the near miss (the teacher's unsystematic errors): ``noisy_answer``
    redrawn until it differs from ``near``; where the noise keeps landing on it, another wrong
    answer drawn uniformly (a label, or another adjacent pair swapped). With two values the near
    miss is the only wrong answer, and that is returned."""
    if len(table) == 2:
        return near
    for _ in range(8):
        answer = noisy_answer(table, qtype, rng, noise)
        if answer != near:
            return answer
    correct = compute_answer(table, qtype)
    if qtype in ("max", "min", "second"):
        return rng.choice([label for label in table if label not in (correct, near)])
    order = _order(table)
    return rng.choice([answer for answer in (_swapped(order, qtype, i) for i in _pairs(len(table), qtype))
                       if answer != near])


def difficulty_table(problems, teacher=None):
    """Per synthchart problem (a DataFrame or row dicts with ``table``, ``question_type``, ``answer``):
    ``gap`` (the difficulty d; NaN for numeric questions), ``near_miss``, ``table_size``, and
    ``changed_by_<kind>`` for each blind spot (whether it changes the answer); with a ``teacher``
    (nsr.teacher.Teacher) also ``teacher_right``, the probability that its target is right.
    Keeps ``problem_id`` where the problems have it. For tabulating a base's samples by difficulty."""
    import pandas as pd

    rows = problems.to_dict("records") if isinstance(problems, pd.DataFrame) else list(problems)
    out = []
    for row in rows:
        table, qtype = json.loads(row["table"])["values"], row["question_type"]
        gap = order_gap(table, qtype)
        entry = {"problem_id": row["problem_id"]} if "problem_id" in row else {}
        entry.update(question_type=qtype, table_size=len(table), gap=float("nan") if gap is None else gap,
                     near_miss=near_miss(table, qtype))
        entry.update({f"changed_by_{kind}": blind_view(kind, row)[1] != row["answer"] for kind in BLIND_SPOTS[1:]})
        if teacher is not None:
            entry["teacher_right"] = teacher.right_probability(row)
        out.append(entry)
    return pd.DataFrame(out)
