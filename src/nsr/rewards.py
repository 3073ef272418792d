"""Verifiers: relaxed numeric accuracy, exact text match, \\boxed{} math answers; graded credit.

``score(completion, answer)`` never raises on any string and never evaluates model output
as code: numbers are parsed with ``float`` after a strict regex, and LaTeX goes through
math-verify (a sympy parser, not ``eval``).

Credit (a problem's ``credit`` column, set by a task option): "binary" is the task's own
accuracy, 1 or 0. "graded" adds partial credit for a numeric gold answered outside the 5%
tolerance (1 - relative error, down to 0); "ranking" gives the fraction of positions a
ranking has right. Other wrong answers (a wrong label) earn 0, and full credit (1.0) is
exactly the binary verdict, so ``full_credit`` means the same whatever the credit.

Numeric match (a problem's ``numeric_match`` column, set by a task option): "relaxed" (default,
ChartQA's 5% tolerance) or "exact" (the number must equal the answer): exact matching makes a
big answer space (3-digit sums) a guess problem instead of a target within reach of near misses.
"""

from __future__ import annotations

import functools
import re
import threading

# A sample is correct (Pass@k, held-out accuracy) only at full credit: the task's own accuracy,
# whatever reward threshold training uses to split positive from negative samples.
FULL_CREDIT = 1.0
# Relative tolerance of ChartQA's "relaxed accuracy".
RELATIVE_TOLERANCE = 0.05
CREDITS = ("binary", "graded", "ranking")
NUMERIC_MATCHES = ("relaxed", "exact")
# Per-problem scoring columns of a problem set and their values when a set has no such column.
SCORING_DEFAULTS = {"credit": "binary", "numeric_match": "relaxed"}
# Longest candidate handed to math-verify: sympy on huge inputs is the one slow path left
# when timeouts are off (they need signal.alarm, i.e. the main thread).
_MATH_MAX_CHARS = 400

_SPECIAL_TOKEN = re.compile(r"<\|[^|<>]{0,40}\|>|</s>|<s>")
# A number: sign, thousands separators (1,234,567) or plain digits, decimals, optional %.
_UNSIGNED = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+"
_NUMBER_FULL = re.compile(rf"\s*([-+]?(?:{_UNSIGNED}))\s*%?\s*")
# In running text a sign counts only when not glued to a word ("B-5" is not -5).
_NUMBER_ANY = re.compile(rf"((?:(?<![\w.,])[-+])?(?<![\d.,])(?:{_UNSIGNED}))")
_ANSWER_PHRASE = re.compile(r"answer\s*(?:is\s*:?|:)\s*(.*)", re.IGNORECASE)
_MATHY = re.compile(r"[\\^{}_/]|\d\s*[a-zA-Z(]|[a-zA-Z)]\s*\d|sqrt|\bpi\b")


def _clean(text: str) -> str:
    """Drop tokenizer control tokens (EOS/pad text) and surrounding whitespace."""
    return _SPECIAL_TOKEN.sub("", text).strip()


def _last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox{...}) with balanced braces, else None."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth, begin = 1, i
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[begin:i].strip()
        i += 1
    return None  # unbalanced: not a usable box


def _strip_answer(text: str) -> str:
    """Trim decoration around an extracted answer: markdown emphasis, $...$, trailing period."""
    text = text.strip().strip("*").strip()
    if len(text) >= 2 and text[0] == text[-1] == "$":
        text = text[1:-1].strip()
    return text.rstrip(".").strip()


def extract_answer(completion: str) -> str:
    """The answer a completion gives: last \\boxed{X}, else the last "answer: X" / "answer is X"
    (to the end of its line), else the whole stripped text."""
    text = _clean(str(completion) if completion is not None else "")
    boxed = _last_boxed(text)
    if boxed is not None:
        return _strip_answer(boxed)
    matches = _ANSWER_PHRASE.findall(text)
    if matches:
        line = matches[-1].split("\n", 1)[0]
        if line.strip():
            return _strip_answer(line)
    return _strip_answer(text)


def parse_number(text: str) -> float | None:
    """A finite float when ``text`` is exactly one number ("1,234", "-3.5", "45%"), else None."""
    match = _NUMBER_FULL.fullmatch(text)
    if not match:
        return None
    value = float(match.group(1).replace(",", ""))
    return value if value == value and abs(value) != float("inf") else None


def _last_number(text: str) -> float | None:
    for raw in reversed(_NUMBER_ANY.findall(text)):
        value = parse_number(raw)
        if value is not None:
            return value
    return None


def relaxed_match(pred: float, gold: float) -> bool:
    """ChartQA relaxed accuracy: within 5% of |gold|; a gold of 0 needs an exact 0."""
    if gold == 0:
        return pred == 0
    # the tiny slack keeps the exact 5% boundary inside despite float rounding (42 vs 39.9)
    return abs(pred - gold) <= RELATIVE_TOLERANCE * abs(gold) * (1 + 1e-9)


def _normalise_text(text: str) -> str:
    return " ".join(_strip_answer(text).lower().split())


def _math_equal(gold: str, pred: str) -> bool:
    """math-verify equivalence of two LaTeX answers; any failure counts as not equal."""
    if len(pred) > _MATH_MAX_CHARS or len(gold) > _MATH_MAX_CHARS or not pred.strip():
        return False
    try:
        from math_verify import parse, verify

        # math-verify's timeouts use signal.alarm, which only works in the main thread;
        # elsewhere (dataloader / reward threads) run without them (inputs are length-capped).
        timeout = 5 if threading.current_thread() is threading.main_thread() else None
        gold_parsed = parse(f"${gold}$", parsing_timeout=timeout)
        pred_parsed = parse(f"${pred}$", parsing_timeout=timeout)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - third-party parser on model output: never propagate
        return False


def row_scoring(problems) -> list[tuple[str, str]]:
    """(credit, numeric_match) of each problem of a DataFrame (or a mapping of column lists, as TRL
    hands a reward function its batch): the arguments of ``score`` after completion and answer."""
    size = len(problems["answer"])
    columns = [problems[name] if name in problems and problems[name] is not None else [default] * size
               for name, default in SCORING_DEFAULTS.items()]
    return list(zip(*columns))


@functools.lru_cache(maxsize=1 << 14)  # completions repeat (a group's samples, short answers): score each once
def score(completion: str, answer: str, credit: str = "binary", numeric_match: str = "relaxed") -> float:
    """Reward in [0, 1] of ``completion`` for gold ``answer`` (never raises on model output).

    Numeric gold: relaxed 5% match (``numeric_match="exact"``: equality) of the extracted answer,
    or of its last number.
    Text gold: case-insensitive exact match after stripping whitespace / trailing period.
    LaTeX-like gold (\\frac{1}{2}, 2\\sqrt{3}, ...): math-verify equivalence as a fallback.
    ``credit`` (one of CREDITS) grades the answers that miss; see the module docstring.
    """
    if credit not in CREDITS:
        raise ValueError(f"credit must be one of {CREDITS}, got {credit!r}")
    if numeric_match not in NUMERIC_MATCHES:
        raise ValueError(f"numeric_match must be one of {NUMERIC_MATCHES}, got {numeric_match!r}")
    completion = "" if completion is None else str(completion)
    answer = "" if answer is None else str(answer)
    pred = extract_answer(completion)
    gold = _strip_answer(_clean(answer))
    gold_value = parse_number(gold)
    if _is_correct(pred, gold, gold_value, numeric_match == "exact"):
        return FULL_CREDIT
    if credit == "ranking":
        return _ranking_credit(pred, gold)
    if credit == "graded" and gold_value is not None:
        return _numeric_credit(_predicted_number(pred), gold_value)
    return 0.0


def full_credit(reward: float) -> bool:
    """Whether a reward of ``score`` is full credit, i.e. the answer is correct by the task's own accuracy
    (works elementwise on tensors and arrays)."""
    return reward >= FULL_CREDIT


def _predicted_number(pred: str) -> float | None:
    """The number an answer gives: the whole extracted answer, else its last number."""
    value = parse_number(pred)
    return value if value is not None else _last_number(pred)


def _is_correct(pred: str, gold: str, gold_value: float | None, exact: bool = False) -> bool:
    if gold_value is not None:
        match = (lambda p, g: p == g) if exact else relaxed_match
        pred_value = parse_number(pred)
        if pred_value is not None:
            return match(pred_value, gold_value)
        # LaTeX / fractions for a numeric gold ("\\frac{1}{2}" or "1/2" for 0.5)
        if ("\\" in pred or "/" in pred) and _math_equal(gold, pred):
            return True
        pred_value = _last_number(pred)
        return pred_value is not None and match(pred_value, gold_value)
    if _normalise_text(pred) == _normalise_text(gold):
        return True
    return bool(_MATHY.search(gold)) and _math_equal(gold, pred)


def _numeric_credit(pred_value: float | None, gold_value: float) -> float:
    """1 - relative error, clipped at 0 (a miss of 50% earns 0.5); only called for a wrong answer, so it
    stays below 1 (below 0.95 under relaxed matching). A gold of 0 has no relative error: a miss earns 0."""
    if pred_value is None or gold_value == 0:
        return 0.0
    return max(0.0, 1.0 - abs(pred_value - gold_value) / abs(gold_value))


def _ranking_credit(pred: str, gold: str) -> float:
    """Fraction of positions right; extra or missing items count as wrong positions ("ABCC" for
    "ABCD": 0.75, "ABCDE": 0.8). Below 1 for any answer that is not the ranking itself."""
    pred, gold = _normalise_text(pred), _normalise_text(gold)
    if not pred or not gold:
        return 0.0
    return sum(p == g for p, g in zip(pred, gold)) / max(len(pred), len(gold))
