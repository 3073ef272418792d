"""The warm-start teacher of the embedded base: what it answers to a synthchart problem.

A task's teacher is not its task: synthchart (nsr.tasks.synthchart) makes problems and their
right answers; the teacher makes the *targets* the tiny model is warm-started on, which shape
the base's prior. Three kinds of error, each keeping every target well formed
(synthchart.is_well_formed), so the base is sure of an answer's form and unsure of its content,
as a pretrained LLM is:

- noise (noise.py): right with probability ``accuracy * decay ** (n - 2)`` for a table of n
  values, else a near miss (``noisy_answer``): spread over many wrong answers, unlearnable as a rule;
- difficulty (difficulty.py, ``difficulty="gap"``): on order questions right with a probability
  that falls with the smallest gap between two values the answer depends on, and when wrong
  mostly one systematic near miss (that pair swapped), so hard problems have a wrong mode;
- a blind spot (blind.py, BLIND_SPOTS): a systematic, learnable error on some problems only.
  Where the blind spot changes the answer, the teacher escapes it with probability
  ``blind_spot_escape`` and otherwise answers what its blind view says (right about that view
  with probability ``accuracy * decay ** (n - 2)``, else a near miss of it, never the true
  answer); everywhere else, and when it escapes, it is the teacher without the blind spot, with
  the same random draws, so adding a blind spot leaves the other problems' targets as they were.

Difficulty and a blind spot compose that way (the blind spot where it bites, the difficulty
teacher elsewhere); a setting that acts on none of the warm-start problems' question types is
refused (``idle_setting``). Targets are drawn afresh each time a problem is drawn, so the student
learns a distribution.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from nsr.teacher.blind import BLIND_SPOTS, ORDER_QUESTIONS, BlindView, acts_on, blind_view, no_carry_sum
from nsr.teacher.difficulty import DIFFICULTIES, closest_pair, gap_accuracy, near_miss, order_gap, spread_miss
from nsr.teacher.noise import noisy_answer, read_table, teacher_answer

__all__ = ["BLIND_SPOTS", "DIFFICULTIES", "ORDER_QUESTIONS", "BlindView", "Teacher", "no_carry_sum",
           "noisy_answer", "teacher_answer"]


@dataclass(frozen=True)
class Teacher:
    """A warm-start teacher (module docstring); the defaults are a perfect one (targets = answers).
    ``hard_gap``, ``easy_gap``, ``hard_accuracy`` and ``systematic`` act with ``difficulty="gap"`` only."""

    accuracy: float = 1.0
    noise: float = 0.3
    decay: float = 1.0
    blind_spot: str = "none"
    blind_spot_escape: float = 0.0
    difficulty: str = "none"
    hard_gap: float = 2.0
    easy_gap: float = 10.0
    hard_accuracy: float = 0.1
    systematic: float = 1.0

    @property
    def perfect(self) -> bool:
        return self.accuracy >= 1 and self.decay >= 1 and self.blind_spot == "none" and self.difficulty == "none"

    def idle_setting(self, question_types) -> tuple[str, str] | None:
        """(setting, why) of a difficulty or blind spot that acts on none of ``question_types``, else None."""
        if self.difficulty != "none" and not set(question_types) & set(ORDER_QUESTIONS):
            return "difficulty", f"{self.difficulty} acts on order questions ({', '.join(ORDER_QUESTIONS)}) only"
        if self.blind_spot != "none" and not acts_on(self.blind_spot, question_types):
            on = "sum questions" if self.blind_spot == "no_carry" else f"order questions ({', '.join(ORDER_QUESTIONS)})"
            return "blind_spot", f"{self.blind_spot} acts on {on} only"
        return None

    def seeing_accuracy(self, table: dict, qtype: str) -> float:
        """Probability of the right answer where no blind spot acts: ``accuracy``, or a(d) on an order
        question of the difficulty teacher, times ``decay ** (n - 2)``."""
        gap = order_gap(table, qtype) if self.difficulty == "gap" else None
        easy = self.accuracy if gap is None else gap_accuracy(gap, self.accuracy, self.hard_accuracy,
                                                               self.hard_gap, self.easy_gap)
        return easy * self.decay ** (len(table) - 2)

    def right_probability(self, row: dict) -> float:
        """Probability that this teacher's target for one synthchart row is its right answer."""
        spec = json.loads(row["table"])
        seeing = self.seeing_accuracy(spec["values"], row["question_type"])
        if self.blind_spot != "none" and blind_view(self.blind_spot, row)[1] != row["answer"]:
            return self.blind_spot_escape * seeing
        return seeing

    def target(self, row: dict, rng: random.Random) -> str:
        """The target for one synthchart row (its ``table`` and ``question_type`` columns)."""
        if self.blind_spot == "none":
            return self._seeing_target(row, rng)
        view, blind = blind_view(self.blind_spot, row)
        if blind == row["answer"] or rng.random() < self.blind_spot_escape:
            return self._seeing_target(row, rng)
        table, qtype = json.loads(row["table"])["values"], row["question_type"]
        if rng.random() < self.accuracy * self.decay ** (len(table) - 2):
            return blind
        # A near miss of the blind view: never the true answer, so the blind spot stays a blind spot.
        for _ in range(32):
            answer = view.answer(read_table(table, qtype, rng, self.noise))
            if answer not in (blind, row["answer"]):
                return answer
        return blind

    def _seeing_target(self, row: dict, rng: random.Random) -> str:
        """The target where no blind spot acts: the noisy teacher's, or on an order question the
        difficulty teacher's (right with seeing_accuracy, else the near miss with probability
        ``systematic``, else another wrong answer)."""
        if self.difficulty == "none":
            return teacher_answer(row, rng, self.accuracy, self.noise, self.decay)
        table, qtype = json.loads(row["table"])["values"], row["question_type"]
        if closest_pair(table, qtype) is None:
            return teacher_answer(row, rng, self.accuracy, self.noise, self.decay)
        if rng.random() < self.seeing_accuracy(table, qtype):
            return row["answer"]
        near = near_miss(table, qtype)
        return near if rng.random() < self.systematic else spread_miss(table, qtype, rng, self.noise, near)
