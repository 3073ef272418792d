"""The warm-start teacher (nsr.teacher): noise, blind spots, and that moving it out of synthchart changed nothing."""

import hashlib
import json
import math
import random
from collections import Counter

import pytest

from nsr.tasks import synthchart
from nsr.teacher import Teacher, no_carry_sum, noisy_answer, teacher_answer

ALL_TYPES = "max,min,second,rank,top3,lookup,diff,sum"
# sha256 of the targets below, drawn with synthchart.teacher_answer before it moved to nsr.teacher
# (main 5f72704): the same rng gives the same targets, so a default study's base is unchanged.
PRE_MOVE_TARGETS = "12dedbb835df8f456c1df735985aeb408c79ca8ffe657e64ec4a409936c74c0d"


def _pre_move_rows():
    return synthchart.load("warmstart", 60, seed=7, types=ALL_TYPES, value_range="10,99", max_categories=7)


def _digest(targets) -> str:
    return hashlib.sha256(json.dumps(targets).encode()).hexdigest()


def test_teacher_targets_are_those_of_before_the_move():
    rows = _pre_move_rows()
    plain = [[teacher_answer(row, rng, 0.4, 0.3, 0.9) for _ in range(4)]
             for rng, row in ((random.Random(i), row) for i, row in enumerate(rows))]
    assert _digest(plain) == PRE_MOVE_TARGETS
    teacher = Teacher(accuracy=0.4, noise=0.3, decay=0.9)
    assert _digest([[teacher.target(row, rng) for _ in range(4)]
                    for rng, row in ((random.Random(i), row) for i, row in enumerate(rows))]) == PRE_MOVE_TARGETS


@pytest.mark.parametrize("qtype", ["max", "min", "second", "rank", "lookup", "sum", "diff"])
def test_noisy_teacher_is_well_formed_and_spread(qtype):
    """Every teacher target is a possible answer; the right one with the set accuracy, the wrong ones
    several different near misses (not one fixed mistake)."""
    rows = synthchart.load("warmstart", 40, seed=1, types=qtype, min_categories=4, max_categories=6,
                           value_range="10,99", shuffle_labels=False)
    rng = random.Random(0)
    right = total = 0
    spreads = []
    for row in rows:
        table = json.loads(row["table"])["values"]
        targets = Counter(teacher_answer(row, rng, accuracy=0.3, noise=0.3) for _ in range(200))
        assert all(synthchart.is_well_formed(table, qtype, t) for t in targets), targets
        right += targets[row["answer"]]
        total += sum(targets.values())
        spreads.append(len(targets) - (row["answer"] in targets))
    assert 0.27 < right / total < 0.33
    assert sum(s >= 2 for s in spreads) / len(spreads) > 0.8  # wrong answers: several candidates per problem


def test_noisy_answer_prefers_near_misses():
    """Read noise confuses values that lie close together: the two closest values swap far more often."""
    table = {"A": 10, "B": 50, "C": 52, "D": 90}
    wrong = Counter(noisy_answer(table, "rank", random.Random(i), noise=0.1) for i in range(300))
    assert "DCBA" not in wrong  # never the right answer
    assert wrong.most_common(1)[0][0] == "DBCA"  # B and C, 2 apart, swapped
    assert wrong["DBCA"] > 0.9 * 300


def test_no_carry_sum_drops_carries_and_keeps_the_leading_column():
    assert no_carry_sum(57, 68) == 115  # 7+8 -> 5, 5+6 written in full
    assert no_carry_sum(95, 17) == 102
    assert no_carry_sum(105, 17) == 112
    assert no_carry_sum(12, 34) == 46 and no_carry_sum(5, 7) == 12  # no carry: the true sum


def blind_answer(row, blind_spot):
    """The blind spot's answer, written independently of nsr.teacher (None: it does not apply)."""
    spec = json.loads(row["table"])
    values, qtype = spec["values"], row["question_type"]
    if blind_spot == "no_carry":
        if qtype != "sum":
            return None
        a, b = str(values[spec["a"]]), str(values[spec["b"]])
        width = max(len(a), len(b))
        a, b = a.zfill(width), b.zfill(width)
        low = "".join(str((int(x) + int(y)) % 10) for x, y in zip(a[1:], b[1:]))
        return str(int(str(int(a[0]) + int(b[0])) + low))
    last = list(values)[-1]
    seen = sorted((k for k in values if k != last), key=values.get, reverse=True)
    if qtype in ("lookup", "diff", "sum") or (qtype == "second" and len(seen) < 2):
        return None
    return {"max": seen[0], "min": seen[-1], "second": seen[1] if len(seen) > 1 else None,
            "rank": "".join(seen + [last]), "top3": "".join((seen + [last])[:3])}[qtype]


CASES = [("last_unseen", dict(types=ALL_TYPES, min_categories=2, max_categories=7, value_range="10,99")),
         ("no_carry", dict(types="sum,lookup,diff", value_range="10,99")),
         ("no_carry", dict(types="sum", value_range="100,999"))]


@pytest.mark.parametrize("blind_spot, options", CASES, ids=["last_unseen", "no_carry-2-digit", "no_carry-3-digit"])
def test_blind_spot_is_well_formed_systematic_and_leaves_other_problems_alone(blind_spot, options):
    rows = synthchart.load("warmstart", 300, seed=3, **options)
    affected = [row for row in rows if blind_answer(row, blind_spot) not in (None, row["answer"])]
    others = [row for row in rows if row not in affected]
    assert len(affected) >= 40 and len(others) >= 20, (len(affected), len(others))

    # Never malformed, over many draws and tables (accuracy 0: every target is a miss or a blind answer).
    for accuracy in (0.0, 0.6):
        teacher = Teacher(accuracy=accuracy, noise=0.3, blind_spot=blind_spot, blind_spot_escape=0.1)
        rng = random.Random(1)
        for row in rows:
            table = json.loads(row["table"])["values"]
            for _ in range(20):
                target = teacher.target(row, rng)
                assert synthchart.is_well_formed(table, row["question_type"], target), (row, target)

    # Learnable: a perfect-but-blind teacher always gives the blind answer where the blind spot bites.
    rng = random.Random(2)
    assert all(Teacher(blind_spot=blind_spot).target(row, rng) == blind_answer(row, blind_spot) for row in affected)

    # Where it bites, right with probability escape * accuracy (the blind view's misses avoid the
    # true answer): within 5 binomial standard deviations.
    accuracy, escape, draws = 0.6, 0.3, 40
    teacher = Teacher(accuracy=accuracy, noise=0.3, blind_spot=blind_spot, blind_spot_escape=escape)
    rng = random.Random(3)
    right = sum(teacher.target(row, rng) == row["answer"] for row in affected for _ in range(draws))
    n, p = len(affected) * draws, escape * accuracy
    assert abs(right / n - p) <= 5 * math.sqrt(p * (1 - p) / n), (right / n, p)
    never = Teacher(accuracy=1.0, noise=0.3, blind_spot=blind_spot, blind_spot_escape=0.0)
    assert not any(never.target(row, rng) == row["answer"] for row in affected for _ in range(5))

    # Elsewhere the noisy teacher as it was, draw for draw.
    for i, row in enumerate(others):
        r1, r2 = random.Random(i), random.Random(i)
        assert [teacher.target(row, r1) for _ in range(5)] == [teacher_answer(row, r2, accuracy, 0.3) for _ in range(5)]
