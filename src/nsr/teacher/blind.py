"""Blind spots: systematic, learnable errors of the teacher on some problems only.

- last_unseen: the teacher overlooks the table's last entry (the last one listed in the prompt):
  max / min / 2nd / rank / top3 are answered about the table without it; an order puts the
  unseen label last, so it stays a permutation. Numeric questions read their values directly.
- no_carry: sums written column by column without carrying (57 + 68 -> 115, the leading column
  in full): a near miss by a multiple of 10, right whenever no column carries.
- coarse: values compared by their tens digit only (value // 10); where two share it, the first
  listed counts as the larger for max / 2nd / rank / top3 (a stable order by listing) and as the
  smaller for min, so every tie goes to the first listed. It changes the answer where the
  question turns on two values of one decade: on the default test problems (data.options of
  config/config.yaml: 2-7 labels, values 10-99, max / min / 2nd / rank; seed 2025, 200
  problems) 47 of 200: 32 of 95 rankings, 4 of 40 max, 5 of 29 min, 6 of 36 2nd
  (tests/test_teacher.py counts them with nsr.teacher.difficulty.difficulty_table).
"""

from __future__ import annotations

import json

from nsr.tasks.synthchart import compute_answer

BLIND_SPOTS = ("none", "last_unseen", "no_carry", "coarse")
ORDER_QUESTIONS = ("max", "min", "second", "rank", "top3")


def no_carry_sum(x: int, y: int) -> int:
    """x + y written column by column without carries; the leading column's sum in full."""
    x, y = abs(x), abs(y)
    digits, place = 0, 1
    while x >= 10 or y >= 10:
        digits += (x % 10 + y % 10) % 10 * place
        x, y, place = x // 10, y // 10, place * 10
    return digits + (x + y) * place


def coarse_answer(table: dict, qtype: str) -> str:
    """An order question answered from the values' tens digits, ties to the first listed."""
    tens = {label: value // 10 for label, value in table.items()}
    # min() keeps the first of equal keys; compute_answer's stable descending sort keeps listing order.
    return min(tens, key=tens.get) if qtype == "min" else compute_answer(tens, qtype)


class BlindView:
    """How a blind spot sees one problem: its answer to any (read) table of the problem."""

    def __init__(self, kind: str, table: dict[str, int], qtype: str, a: str | None, b: str | None):
        self.kind, self.qtype, self.a, self.b = kind, qtype, a, b
        self.unseen = list(table)[-1] if kind == "last_unseen" else None
        self.seen = {k: v for k, v in table.items() if k != self.unseen}

    def applies(self) -> bool:
        """Whether the blind spot can act on this question at all (a 2nd-largest needs two values seen)."""
        if self.kind == "last_unseen":
            return self.qtype in ORDER_QUESTIONS and len(self.seen) >= (2 if self.qtype == "second" else 1)
        if self.kind == "coarse":
            return self.qtype in ORDER_QUESTIONS
        return self.kind == "no_carry" and self.qtype == "sum"

    def answer(self, table: dict) -> str:
        """The blind answer to ``table`` (the problem's table, or a noisy reading of it)."""
        if self.kind == "no_carry":
            return str(no_carry_sum(round(table[self.a]), round(table[self.b])))
        if self.kind == "coarse":
            return coarse_answer(table, self.qtype)
        seen = {k: v for k, v in table.items() if k != self.unseen}
        if self.qtype in ("rank", "top3"):
            order = sorted(seen, key=seen.get, reverse=True) + [self.unseen]
            return "".join(order[:3] if self.qtype == "top3" else order)
        return compute_answer(seen, self.qtype)


def blind_view(kind: str, row: dict) -> tuple[BlindView, str]:
    """The blind spot ``kind``'s view of one synthchart row and its answer there (the true answer
    where the blind spot cannot act): the blind spot changes the problem where the two differ."""
    spec = json.loads(row["table"])
    view = BlindView(kind, spec["values"], row["question_type"], spec["a"], spec["b"])
    return view, view.answer(spec["values"]) if view.applies() else row["answer"]


def acts_on(kind: str, question_types) -> bool:
    """Whether blind spot ``kind`` can change any question of these types."""
    wanted = {"none": (), "no_carry": ("sum",)}.get(kind, ORDER_QUESTIONS)
    return any(qtype in wanted for qtype in question_types)
