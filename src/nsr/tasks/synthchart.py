"""Synthetic chart question answering with verifiable answers (no hub needed).

A problem is a small table (2-5 distinct random one-letter categories with distinct values,
single digits by default) and a question computed from it. Text rendering puts the whole table
in a compact prompt where every character is one token of the tiny byte-level model, e.g.

    "K=7 B=1 Q=6 D=9|max?"  ->  "D"        "K=7 B=1 Q=6 D=9|rank?"  ->  "DKQB"

Image rendering draws the table as a bar, line or pie chart (PNG bytes, matplotlib Agg) and
the prompt then holds only the question. Each problem goes to the warmstart / train / test
split by a hash of its content, so the splits are disjoint by construction, and rows are a
pure function of (split, num, seed, options).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import random
import string

from nsr.io import InputError
from nsr.rewards import NUMERIC_MATCHES
from nsr.tasks import graded_credit

SPLITS = {"warmstart": range(0, 7), "train": range(7, 9), "test": range(9, 10)}  # hash % 10
DEFAULT_SIZES = {"warmstart": 20000, "train": 2000, "test": 200}
LABELS = string.ascii_uppercase

# Letter answers need the model to compare values and copy the right label (partial skill
# leaves plausible wrong labels); "rank" has n! answers, so guessing it rarely scores.
QUESTION_TYPES = ("max", "min", "second", "rank", "top3", "lookup", "diff", "sum")
# Default mix (type -> weight), tuned so the warm-started tiny model has partial skill: one-letter
# answers are learned partly, rank (the only answer a copying guesser cannot cover in 256
# samples) is half the mix. Single-digit lookup/diff/sum answers are easy to guess: opt-in only.
DEFAULT_TYPES = {"max": 1, "min": 1, "second": 1, "rank": 3}

TEXT_QUESTIONS = {"max": "max?", "min": "min?", "second": "2nd?", "rank": "rank?", "top3": "top3?",
                  "lookup": "{a}?", "diff": "{a}-{b}?", "sum": "{a}+{b}?"}
IMAGE_QUESTIONS = {
    "max": "Which category has the largest value?",
    "min": "Which category has the smallest value?",
    "second": "Which category has the second largest value?",
    "rank": "List the categories from largest to smallest value, as one string of letters.",
    "top3": "List the three categories with the largest values, largest first, as one string of letters.",
    "lookup": "What is the value of category {a}?",
    "diff": "What is the value of {a} minus the value of {b}?",
    "sum": "What is the sum of the values of {a} and {b}?",
}
CHART_KINDS = ("bar", "line", "pie")


def compute_answer(table: dict[str, int], qtype: str, a: str | None = None, b: str | None = None) -> str:
    by_value = sorted(table, key=table.get, reverse=True)
    if qtype == "max":
        return by_value[0]
    if qtype == "min":
        return by_value[-1]
    if qtype == "second":
        return by_value[1]
    if qtype == "rank":
        return "".join(by_value)
    if qtype == "top3":
        return "".join(by_value[:3])
    if qtype == "lookup":
        return str(table[a])
    if qtype == "diff":
        return str(table[a] - table[b])
    if qtype == "sum":
        return str(table[a] + table[b])
    raise InputError(f"synthchart: unknown question type {qtype!r}; known: {list(QUESTION_TYPES)}")


def is_well_formed(table: dict[str, int], qtype: str, answer: str) -> bool:
    """Whether ``answer`` is a possible answer of this kind, right or wrong: a permutation of
    the table's labels for rank, min(3, n) distinct labels for top3, one of its labels for
    max/min/2nd, an integer otherwise. Separates "wrong but plausible" from malformed (e.g.
    "ABCC") in a model's samples."""
    answer = answer.strip()
    if qtype == "rank":
        return len(answer) == len(table) and set(answer) == set(table)
    if qtype == "top3":
        return len(answer) == min(3, len(table)) == len(set(answer)) and set(answer) <= set(table)
    if qtype in ("max", "min", "second"):
        return answer in table
    if qtype in ("lookup", "diff", "sum"):
        return answer.lstrip("-").isdigit()
    raise InputError(f"synthchart: unknown question type {qtype!r}; known: {list(QUESTION_TYPES)}")


def answer_space(table: dict[str, int], qtype: str, value_range: tuple[int, int]) -> int:
    """How many well-formed answers a question has that the task could make right (what a uniform
    guess picks among: chance is 1 / this): the labels for max / min / 2nd, n! orders for rank,
    ordered picks of min(3, n) labels for top3, the values a lookup / positive diff / sum of two
    distinct values in ``value_range`` can take."""
    low, high = value_range
    n = len(table)
    if qtype in ("max", "min", "second"):
        return n
    if qtype == "rank":
        return math.factorial(n)
    if qtype == "top3":
        return math.perm(n, min(3, n))
    if qtype == "lookup":
        return high - low + 1
    if qtype == "diff":
        return high - low  # 1 .. high - low
    if qtype == "sum":
        return 2 * (high - low) - 1  # 2 low + 1 .. 2 high - 1
    raise InputError(f"synthchart: unknown question type {qtype!r}; known: {list(QUESTION_TYPES)}")


def _draw(rng: random.Random, types, min_categories, max_categories, value_range, shuffle_labels) -> dict:
    n = rng.randint(min_categories, max_categories)
    labels = rng.sample(LABELS, n) if shuffle_labels else list(LABELS[:n])
    values = rng.sample(range(value_range[0], value_range[1] + 1), n)  # distinct: unique max/min/rank
    table = dict(zip(labels, values))
    qtype = rng.choices(list(types), weights=list(types.values()))[0]
    a = b = None
    if qtype in ("lookup", "diff", "sum"):
        a, b = rng.sample(labels, 2)
        if qtype == "diff" and table[a] < table[b]:
            a, b = b, a  # keep differences positive: one answer format
    return {"table": table, "question_type": qtype, "a": a, "b": b}


def _content_hash(problem: dict) -> str:
    key = json.dumps([list(problem["table"].items()), problem["question_type"], problem["a"], problem["b"]])
    return hashlib.sha256(key.encode()).hexdigest()


def text_prompt(problem: dict) -> str:
    table = " ".join(f"{k}={v}" for k, v in problem["table"].items())
    return f"{table}|" + TEXT_QUESTIONS[problem["question_type"]].format(a=problem["a"], b=problem["b"])


def render_png(table: dict[str, int], kind: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, values = list(table), list(table.values())
    fig, ax = plt.subplots(figsize=(3.2, 2.4), dpi=80)
    if kind == "bar":
        bars = ax.bar(labels, values, color="tab:blue")
        ax.bar_label(bars, fontsize=8)
    elif kind == "line":
        ax.plot(labels, values, marker="o", color="tab:orange")
        for x, y in zip(labels, values):
            ax.annotate(str(y), (x, y), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8)
        ax.set_ylim(0, max(values) * 1.2)
    else:
        ax.pie(values, labels=[f"{k} ({v})" for k, v in table.items()], textprops={"fontsize": 8})
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _as_int(name: str, value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InputError(f"synthchart: option {name!r} must be an integer, got {value!r}") from None


def _as_bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "1", "yes"):
        return True
    if str(value).strip().lower() in ("false", "0", "no"):
        return False
    raise InputError(f"synthchart: option {name!r} must be true or false, got {value!r}")


# Option credit=graded: the partial credit (nsr.rewards.CREDITS) each question type's answer admits.
GRADED_CREDIT = {"rank": "ranking", "top3": "ranking", "lookup": "graded", "diff": "graded", "sum": "graded"}


def answer_credit(qtype: str) -> str:
    """Under credit=graded: a ranking earns the positions it has right, a number credit falling with
    its error; a label (max / min / 2nd) stays binary, a wrong one earns 0."""
    return GRADED_CREDIT.get(qtype, "binary")


OPTIONS = ("render", "types", "min_categories", "max_categories", "value_range", "shuffle_labels", "credit",
           "numeric_match")
# Problems per split a study may ask for: a typo'd size (100 000) fails at config time instead of
# writing (and later sampling 256 times) that many problems. The warm-start pool is this size.
MAX_PROBLEMS = DEFAULT_SIZES["warmstart"]


def _parse_types(types) -> dict:
    """Question types with weights: "max,rank" (equal weights), "max:1,rank:3", a list or a mapping."""
    if isinstance(types, dict):
        return dict(types)
    if not isinstance(types, str):
        return dict.fromkeys(types, 1)
    weights = {}
    for part in types.split(","):
        name, _, weight = part.strip().partition(":")
        try:
            weights[name] = float(weight) if weight else 1
        except ValueError:
            raise InputError(f"synthchart: option 'types': bad weight {weight!r} of {name!r} (use e.g. 'max:1,rank:3')") from None
    return weights


def parse_options(render: str = "text", types=DEFAULT_TYPES, min_categories: int = 2, max_categories: int = 5,
                  value_range=(1, 9), shuffle_labels: bool = True, credit: str = "binary",
                  numeric_match: str = "relaxed", **unknown) -> dict:
    """Task options (Python values or the strings of `--option key=value`: value_range "1,20",
    types "max,rank" or a {type: weight} mapping) checked and normalised; InputError names the option.
    credit=graded makes load add each row's ``credit`` (answer_credit) for graded rewards;
    numeric_match=exact each row's ``numeric_match`` (nsr.rewards.score: a number is right only when
    it equals the answer, not within 5%), so sums of 3-digit values cannot be guessed near."""
    if unknown:
        raise InputError(f"synthchart: unknown option(s) {sorted(unknown)}; known options: {sorted(OPTIONS)}")
    credit = "graded" if graded_credit("synthchart", credit) else "binary"
    numeric_match = str(numeric_match).strip()
    if numeric_match not in NUMERIC_MATCHES:
        raise InputError(f"synthchart: option 'numeric_match' must be one of {list(NUMERIC_MATCHES)}, "
                         f"got {numeric_match!r}")
    min_categories = _as_int("min_categories", min_categories)
    max_categories = _as_int("max_categories", max_categories)
    shuffle_labels = _as_bool("shuffle_labels", shuffle_labels)
    if isinstance(value_range, str):
        value_range = value_range.split(",")
    if len(value_range) != 2:
        raise InputError(f"synthchart: option 'value_range' must be two integers 'low,high', got {value_range!r}")
    value_range = (_as_int("value_range", value_range[0]), _as_int("value_range", value_range[1]))
    if render not in ("text", "image"):
        raise InputError(f"synthchart: unknown render {render!r}; expected 'text' or 'image'")
    types = _parse_types(types)
    if not types or any(t not in QUESTION_TYPES or not types[t] > 0 for t in types):
        raise InputError(f"synthchart: bad question types {types!r}; known: {list(QUESTION_TYPES)}")
    if not 2 <= min_categories <= max_categories <= len(LABELS):
        raise InputError(f"synthchart: need 2 <= min_categories <= max_categories <= {len(LABELS)}")
    if value_range[1] - value_range[0] + 1 < max_categories:
        raise InputError(f"synthchart: value_range {value_range} too small for {max_categories} distinct values")
    return {"render": render, "types": types, "min_categories": min_categories, "max_categories": max_categories,
            "value_range": value_range, "shuffle_labels": shuffle_labels, "credit": credit,
            "numeric_match": numeric_match}


def _pairs(qtype: str, table: dict[str, int]):
    """The (a, b) label pairs a question of this type can draw (as _draw does)."""
    if qtype in ("lookup", "sum"):
        return itertools.permutations(table, 2)
    if qtype == "diff":
        return ((a, b) for a, b in itertools.permutations(table, 2) if table[a] > table[b])
    return [(None, None)]


def distinct_problems(split: str, **options) -> int:
    """How many distinct problems of ``split`` these options can generate: exact (every problem
    enumerated and hashed) for small option spaces, else the expected share of all problems."""
    opts = parse_options(**options)
    low, high = opts["value_range"]
    sizes = range(opts["min_categories"], opts["max_categories"] + 1)
    pairs = {"lookup": math.perm, "sum": math.perm, "diff": math.comb}  # ordered pairs; diff orders by value
    total = sum((math.perm(len(LABELS), n) if opts["shuffle_labels"] else 1) * math.perm(high - low + 1, n)
                * sum(pairs[t](n, 2) if t in pairs else 1 for t in opts["types"]) for n in sizes)
    if total > 50_000:
        return total * len(SPLITS[split]) // 10
    count = 0
    for n in sizes:
        label_sets = itertools.permutations(LABELS, n) if opts["shuffle_labels"] else [tuple(LABELS[:n])]
        for labels in label_sets:
            for values in itertools.permutations(range(low, high + 1), n):
                table = dict(zip(labels, values))
                for qtype in opts["types"]:
                    for a, b in _pairs(qtype, table):
                        digest = _content_hash({"table": table, "question_type": qtype, "a": a, "b": b})
                        count += int(digest[:8], 16) % 10 in SPLITS[split]
    return count


def check(split: str, options: dict) -> dict:
    """Option names and values (see parse_options) and the split, without generating anything."""
    if split not in SPLITS:
        raise InputError(f"synthchart: unknown split {split!r}; expected one of {list(SPLITS)}")
    return parse_options(**options)


def check_size(split: str, num: int, **options) -> None:
    """InputError when ``num`` problems of ``split`` are more than the study limit or than the options allow."""
    check(split, options)
    if num > MAX_PROBLEMS:
        raise InputError(f"synthchart: {num} {split} problems asked for; the limit is {MAX_PROBLEMS} per split")
    available = distinct_problems(split, **options)
    if num > available:
        raise InputError(f"synthchart: {num} {split} problems asked for, but these options give only about "
                         f"{available} distinct {split} problems (allow more categories, values or question types)")


def load(split: str, num: int | None, seed: int, **options) -> list[dict]:
    """Seeded problems of one split; ``load(s, m, seed)`` is a prefix of ``load(s, n, seed)`` for m < n.

    Options: see ``parse_options``."""
    opts = check(split, options)
    render, types = opts["render"], opts["types"]
    min_categories, max_categories = opts["min_categories"], opts["max_categories"]
    value_range, shuffle_labels = opts["value_range"], opts["shuffle_labels"]
    graded = opts["credit"] == "graded"
    num = DEFAULT_SIZES[split] if num is None else int(num)
    # The rng depends on the split too, so the splits' problem streams differ, not just their filters.
    rng = random.Random(f"synthchart/{split}/{seed}")
    rows, seen, attempts = [], set(), 0
    while len(rows) < num:
        attempts += 1
        if attempts > 100 * num + 10000:
            raise InputError(f"synthchart: cannot draw {num} distinct {split!r} problems with these options")
        problem = _draw(rng, types, min_categories, max_categories, value_range, shuffle_labels)
        digest = _content_hash(problem)
        if int(digest[:8], 16) % 10 not in SPLITS[split] or digest in seen:
            continue
        seen.add(digest)
        answer = compute_answer(problem["table"], problem["question_type"], problem["a"], problem["b"])
        row = {
            "problem_id": f"synthchart-{digest[:16]}",
            "prompt": text_prompt(problem),
            "answer": answer,
            "question_type": problem["question_type"],
            "table": json.dumps({"values": problem["table"], "a": problem["a"], "b": problem["b"]}),
        }
        if graded:
            row["credit"] = answer_credit(problem["question_type"])
        if opts["numeric_match"] != "relaxed":
            row["numeric_match"] = opts["numeric_match"]
        if render == "image":
            kind = CHART_KINDS[int(digest[8:16], 16) % len(CHART_KINDS)]
            row["prompt"] = IMAGE_QUESTIONS[problem["question_type"]].format(a=problem["a"], b=problem["b"])
            row["image"] = render_png(problem["table"], kind)
        rows.append(row)
    return rows
