"""The warm-start teacher of the embedded base: what it answers to a synthchart problem.

A task's teacher is not its task: synthchart (nsr.tasks.synthchart) makes problems and their
right answers; the teacher makes the *targets* the tiny model is warm-started on, which shape
the base's prior. Three kinds of error, each keeping every target well formed
(synthchart.is_well_formed), so the base is sure of an answer's form and unsure of its content,
as a pretrained LLM is:

- noise: right with probability ``accuracy * decay ** (n - 2)`` for a table of n values, else a
  near miss (``noisy_answer``): spread over many wrong answers, unlearnable as a rule;
- a blind spot: a systematic, learnable error on some problems only (BLIND_SPOTS). Where the
  blind spot changes the answer, the teacher escapes it with probability ``blind_spot_escape``
  and otherwise answers what its blind view says (right about that view with its accuracy, else
  a near miss of it, never the true answer); everywhere else it is the noisy teacher, with the
  same random draws, so adding a blind spot leaves the other problems' targets as they were.

Targets are drawn afresh each time a problem is drawn, so the student learns a distribution.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from nsr.tasks.synthchart import compute_answer

# last_unseen: the teacher overlooks the table's last entry (the last one listed in the prompt):
#   max / min / 2nd / rank / top3 are answered about the table without it; an order puts the
#   unseen label last, so it stays a permutation. Numeric questions read their values directly.
# no_carry: sums written column by column without carrying (57 + 68 -> 115, the leading column
#   in full): a near miss by a multiple of 10, right whenever no column carries.
BLIND_SPOTS = ("none", "last_unseen", "no_carry")
ORDER_QUESTIONS = ("max", "min", "second", "rank", "top3")


def noisy_answer(table: dict[str, int], qtype: str, rng: random.Random, noise: float,
                 a: str | None = None, b: str | None = None) -> str:
    """A plausible wrong answer: the same question answered from the table as read with noise.

    Every value is read as value + N(0, (noise * spread)^2), spread = max - min of the table's
    values (1 for a one-value spread), and the answer recomputed; draws that happen to be right
    are redrawn. So the wrong answer is well formed and confuses values that lie close together
    (near misses are likely, far ones rare). Falls back to a uniformly drawn wrong answer of
    the same form when noise cannot make one (e.g. noise 0).
    """
    correct = compute_answer(table, qtype, a, b)
    for _ in range(32):
        answer = compute_answer(_read(table, qtype, rng, noise), qtype, a, b)
        if answer != correct:
            return answer
    labels = list(table)
    if qtype in ("max", "min", "second"):
        return rng.choice([label for label in labels if label != correct])
    if qtype in ("rank", "top3") and len(table) > 2:
        order = sorted(table, key=table.get, reverse=True)
        i = rng.randrange(min(3, len(order) - 1) if qtype == "top3" else len(order) - 1)
        order[i], order[i + 1] = order[i + 1], order[i]
        return "".join(order[:3] if qtype == "top3" else order)
    if qtype in ("rank", "top3"):
        return correct[::-1]
    return str(int(correct) + rng.choice((-1, 1)))


def _read(table: dict[str, int], qtype: str, rng: random.Random, noise: float) -> dict:
    """The table as the teacher reads it: each value plus Gaussian noise of ``noise`` times the spread."""
    if not noise > 0:
        return table
    spread = max(max(table.values()) - min(table.values()), 1)
    read = {k: v + rng.gauss(0.0, noise * spread) for k, v in table.items()}
    return {k: round(v) for k, v in read.items()} if qtype in ("lookup", "diff", "sum") else read


def teacher_answer(row: dict, rng: random.Random, accuracy: float, noise: float, decay: float = 1.0) -> str:
    """Target of the noisy teacher (no blind spot) for one synthchart row: the right answer with
    probability ``accuracy * decay ** (n - 2)`` for a table of n values, else ``noisy_answer``."""
    spec = json.loads(row["table"])
    if rng.random() < accuracy * decay ** (len(spec["values"]) - 2):
        return row["answer"]
    return noisy_answer(spec["values"], row["question_type"], rng, noise, spec["a"], spec["b"])


def no_carry_sum(x: int, y: int) -> int:
    """x + y written column by column without carries; the leading column's sum in full."""
    x, y = abs(x), abs(y)
    digits, place = 0, 1
    while x >= 10 or y >= 10:
        digits += (x % 10 + y % 10) % 10 * place
        x, y, place = x // 10, y // 10, place * 10
    return digits + (x + y) * place


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
        return self.kind == "no_carry" and self.qtype == "sum"

    def answer(self, table: dict) -> str:
        """The blind answer to ``table`` (the problem's table, or a noisy reading of it)."""
        if self.kind == "no_carry":
            return str(no_carry_sum(round(table[self.a]), round(table[self.b])))
        seen = {k: v for k, v in table.items() if k != self.unseen}
        if self.qtype in ("rank", "top3"):
            order = sorted(seen, key=seen.get, reverse=True) + [self.unseen]
            return "".join(order[:3] if self.qtype == "top3" else order)
        return compute_answer(seen, self.qtype)


@dataclass(frozen=True)
class Teacher:
    """A warm-start teacher (module docstring); the defaults are a perfect one (targets = answers)."""

    accuracy: float = 1.0
    noise: float = 0.3
    decay: float = 1.0
    blind_spot: str = "none"
    blind_spot_escape: float = 0.0

    @property
    def perfect(self) -> bool:
        return self.accuracy >= 1 and self.decay >= 1 and self.blind_spot == "none"

    def target(self, row: dict, rng: random.Random) -> str:
        """The target for one synthchart row (its ``table`` and ``question_type`` columns)."""
        if self.blind_spot == "none":
            return teacher_answer(row, rng, self.accuracy, self.noise, self.decay)
        spec = json.loads(row["table"])
        table, qtype = spec["values"], row["question_type"]
        view = BlindView(self.blind_spot, table, qtype, spec["a"], spec["b"])
        blind = view.answer(table) if view.applies() else row["answer"]
        if blind == row["answer"] or rng.random() < self.blind_spot_escape:
            return teacher_answer(row, rng, self.accuracy, self.noise, self.decay)
        if rng.random() < self.accuracy * self.decay ** (len(table) - 2):
            return blind
        # A near miss of the blind view: never the true answer, so the blind spot stays a blind spot.
        for _ in range(32):
            answer = view.answer(_read(table, qtype, rng, self.noise))
            if answer not in (blind, row["answer"]):
                return answer
        return blind
