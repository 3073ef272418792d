import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsr.rewards import extract_answer, full_credit, parse_number, score


@pytest.mark.parametrize(
    "completion, answer, expected",
    [
        # relaxed numeric accuracy (5% of |gold|)
        ("42", "42", 1.0),
        ("44", "42", 1.0),
        ("44.2", "42", 0.0),
        ("39.9", "42", 1.0),
        ("39.8", "42", 0.0),
        ("-3.5", "-3.5", 1.0),
        ("3.5", "-3.5", 0.0),
        ("0", "0", 1.0),
        ("0.001", "0", 0.0),
        ("1,234", "1234", 1.0),
        ("1234", "1,234", 1.0),
        ("45%", "45", 1.0),
        ("45", "45%", 1.0),
        (".5", "0.5", 1.0),
        # EOS / pad text and decoration
        ("42<|endoftext|>", "42", 1.0),
        ("42<|endoftext|><|pad|><|pad|>", "42", 1.0),
        ("  42.  ", "42", 1.0),
        # extraction from free-form text
        ("The answer is 17.", "17", 1.0),
        ("Answer: 17\nbecause 3 + 14", "17", 1.0),
        ("answer: **17**", "17", 1.0),
        ("I think 3 then 5 so 17.5", "17", 1.0),
        ("3/4", "0.75", 1.0),
        ("I think 3 then 5 so 19", "17", 0.0),
        ("first 17 then 30", "17", 0.0),
        ("B-5 gives 7", "7", 1.0),
        ("B-5", "-5", 0.0),
        ("no number here", "17", 0.0),
        ("", "17", 0.0),
        ("\\boxed{17} and later 99", "17", 1.0),
        ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
        # text answers: case-insensitive exact
        ("DACB", "dacb", 1.0),
        ("dacb<|endoftext|>", "DACB", 1.0),
        ("Apple.", "apple", 1.0),
        ("The answer is Apple", "apple", 1.0),
        ("Apples", "apple", 0.0),
        ("ABCC", "ABCD", 0.0),
        ("new   york", "New York", 1.0),
        # math mode (math-verify)
        ("so \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", 1.0),
        ("\\boxed{0.5}", "\\frac{1}{2}", 1.0),
        ("\\boxed{\\frac{2}{4}}", "\\frac{1}{2}", 1.0),
        ("\\boxed{\\frac{1}{3}}", "\\frac{1}{2}", 0.0),
        ("\\boxed{x^2+1}", "1+x^2", 1.0),
        ("\\boxed{2\\sqrt{3}}", "\\sqrt{12}", 1.0),
        ("\\boxed{\\sqrt{2}", "\\sqrt{2}", 0.0),  # unbalanced box is no box
        ("\\boxed{{a}+{b}}", "{a}+{b}", 1.0),  # balanced nested braces
    ],
)
def test_known_cases(completion, answer, expected):
    assert score(completion, answer) == expected


@pytest.mark.parametrize(
    "completion, extracted",
    [
        ("x \\boxed{1} y \\boxed{\\frac{a}{b}} z", "\\frac{a}{b}"),
        ("The answer is: DACB.\nmore", "DACB"),
        ("answer is $\\pi$", "\\pi"),
        ("  plain text.  ", "plain text"),
        ("17<|endoftext|>", "17"),
    ],
)
def test_extract_answer(completion, extracted):
    assert extract_answer(completion) == extracted


def test_parse_number():
    assert parse_number("1,234,567.5") == 1234567.5
    assert parse_number("-12%") == -12.0
    assert parse_number("12,34") is None
    assert parse_number("1e5") is None  # no scientific notation: avoids 1e999 -> inf
    assert parse_number("9" * 400) is None  # overflow to inf is not a number


def test_model_output_is_never_evaluated():
    # would be 2 if evaluated as Python
    assert score("1+1", "2") == 0.0
    assert score("__import__('os').getpid()", "0") == 0.0


def test_math_mode_outside_main_thread():
    # math-verify's signal timeouts only work in the main thread; the reward must still work.
    result = []
    thread = threading.Thread(target=lambda: result.append(score("\\boxed{0.5}", "\\frac{1}{2}")))
    thread.start()
    thread.join()
    assert result == [1.0]


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_never_raises_on_arbitrary_strings(completion, answer):
    value = score(completion, answer)
    assert value in (0.0, 1.0)
    assert isinstance(extract_answer(completion), str)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789,.-+%\\{}boxed answer:$^/")), st.integers(-10**6, 10**6))
def test_never_raises_on_number_like_strings(completion, gold):
    assert score(completion, str(gold)) in (0.0, 1.0)
    # the gold itself always scores, in any answer wrapper
    assert score(f"The answer is {gold}.", str(gold)) == 1.0
    assert score(f"\\boxed{{{gold}}}", str(gold)) == 1.0


@pytest.mark.parametrize(
    "completion, answer, credit, expected",
    [
        # graded numbers: inside the 5% tolerance full credit, outside 1 - relative error (down to 0)
        ("42", "42", "graded", 1.0),
        ("44", "42", "graded", 1.0),
        ("50", "40", "graded", 0.75),
        ("The answer is 30.", "40", "graded", 0.75),
        ("20", "40", "graded", 0.5),
        ("100", "40", "graded", 0.0),
        ("-40", "40", "graded", 0.0),
        ("3", "0", "graded", 0.0),  # a gold of 0 has no relative error
        ("no number", "40", "graded", 0.0),
        ("B", "A", "graded", 0.0),  # a wrong label earns 0
        ("a", "A", "graded", 1.0),
        # rankings: the fraction of positions right
        ("DKQB", "DKQB", "ranking", 1.0),
        ("dkqb", "DKQB", "ranking", 1.0),
        ("DKBQ", "DKQB", "ranking", 0.5),
        ("DQKB", "DKQB", "ranking", 0.5),
        ("KDQB", "DKQB", "ranking", 0.5),
        ("BQKD", "DKQB", "ranking", 0.0),
        ("DKQ", "DKQB", "ranking", 0.75),  # a missing item is a wrong position
        ("DKQBA", "DKQB", "ranking", 0.8),  # so is an extra one
        ("", "DKQB", "ranking", 0.0),
        # binary: the task's accuracy, whatever the answer kind
        ("50", "40", "binary", 0.0),
        ("DKBQ", "DKQB", "binary", 0.0),
    ],
)
def test_graded_credit(completion, answer, credit, expected):
    assert score(completion, answer, credit) == pytest.approx(expected)


def test_unknown_credit_is_an_error():
    with pytest.raises(ValueError, match="credit"):
        score("1", "1", "lenient")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ABCDE0123456789.-% ")), st.sampled_from(["ABCD", "DCBA", "40", "-2.5", "0", "A"]),
       st.sampled_from(["graded", "ranking"]))
def test_full_credit_is_exactly_the_binary_verdict(completion, answer, credit):
    reward = score(completion, answer, credit)
    assert 0.0 <= reward <= 1.0
    assert full_credit(reward) == (score(completion, answer) == 1.0)
    assert full_credit(reward) == (reward == 1.0)
