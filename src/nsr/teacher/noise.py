"""The noisy teacher: right with a fixed probability, else a near miss spread over many wrong answers."""

from __future__ import annotations

import json
import random

from nsr.tasks.synthchart import compute_answer


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
        answer = compute_answer(read_table(table, qtype, rng, noise), qtype, a, b)
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


def read_table(table: dict[str, int], qtype: str, rng: random.Random, noise: float) -> dict:
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
