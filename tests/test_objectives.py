import math

import pytest
import torch
from trl.trainer.utils import nanstd

from nsr.objectives import advantages, methods

T, F = True, False


def _bool(values):
    return torch.tensor(values, dtype=torch.bool)


def test_registry_lists_the_four_methods():
    assert methods() == ["grpo", "nsr", "psr", "w-reinforce"]


def test_grpo_matches_hand_computation():
    # group 1: one of four correct: mean 1/4, Bessel std sqrt((9/16 + 3/16) / 3) = 1/2
    # group 2: all correct (std 0), group 3: all incorrect (std 0) -> advantage 0
    adv, keep = advantages(_bool([T, F, F, F, T, T, T, T, F, F, F, F]), "grpo", group_size=4)
    hi, lo = 0.75 / (0.5 + 1e-4), -0.25 / (0.5 + 1e-4)
    expected = torch.tensor([hi, lo, lo, lo] + [0.0] * 8)
    torch.testing.assert_close(adv, expected)
    assert keep.all()


def test_grpo_matches_trl_formula_on_random_groups():
    gen = torch.Generator().manual_seed(0)
    correct = torch.rand(6 * 5, generator=gen) < 0.4
    adv, _ = advantages(correct, "grpo", group_size=5)
    r = correct.float().view(-1, 5)
    ref = (r - r.mean(1, keepdim=True)) / (nanstd(r, dim=1, keepdim=True) + 1e-4)
    torch.testing.assert_close(adv, torch.nan_to_num(ref).view(-1))


def test_grpo_without_group_size_normalises_the_whole_batch():
    adv, _ = advantages(_bool([T, F]), "grpo")
    expected = 0.5 / (math.sqrt(0.5) + 1e-4)
    torch.testing.assert_close(adv, torch.tensor([expected, -expected]))


def test_grpo_group_of_one_gives_zero_advantage_like_trl():
    adv, keep = advantages(_bool([T, F, T]), "grpo", group_size=1)
    assert torch.equal(adv, torch.zeros(3)) and keep.all()


@pytest.mark.parametrize(
    "method, adv_expected, keep_expected",
    [
        ("psr", [1, 0, 1, 1, 0, 0], [T, F, T, T, F, F]),
        ("nsr", [0, -1, 0, 0, -1, -1], [F, T, F, F, T, T]),
        ("w-reinforce", [0.1, -1, 0.1, 0.1, -1, -1], [T, T, T, T, T, T]),
    ],
)
def test_decomposed_objectives(method, adv_expected, keep_expected):
    # groups of 2: mixed, all correct, all incorrect
    adv, keep = advantages(_bool([T, F, T, T, F, F]), method, group_size=2)
    torch.testing.assert_close(adv, torch.tensor(adv_expected, dtype=torch.float))
    assert keep.tolist() == keep_expected
    assert adv.dtype == torch.float32 and keep.dtype == torch.bool


def test_excluded_samples_carry_no_advantage():
    correct = torch.rand(64, generator=torch.Generator().manual_seed(1)) < 0.5
    for method in ("psr", "nsr"):
        adv, keep = advantages(correct, method, group_size=8)
        assert (adv[~keep] == 0).all() and (adv[keep] != 0).all()


def test_w_reinforce_lambda_and_extremes():
    adv, _ = advantages(_bool([T, F]), "w-reinforce", lambda_psr=0.35)
    torch.testing.assert_close(adv, torch.tensor([0.35, -1.0]))
    all_correct, keep = advantages(_bool([T, T, T]), "w-reinforce", lambda_psr=0.0)
    assert torch.equal(all_correct, torch.zeros(3)) and keep.all()


def test_all_correct_and_all_incorrect_batches():
    ones, zeros = _bool([T] * 4), _bool([F] * 4)
    assert not advantages(ones, "nsr")[1].any()  # NSR: nothing to learn from
    assert not advantages(zeros, "psr")[1].any()  # PSR: nothing to learn from
    assert advantages(zeros, "nsr")[1].all() and advantages(ones, "psr")[1].all()


def test_accepts_integer_zero_one():
    adv, keep = advantages(torch.tensor([1, 0]), "psr")
    assert adv.tolist() == [1.0, 0.0] and keep.tolist() == [T, F]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(correct=_bool([T, F]), method="ppo"), "known objectives.*grpo.*nsr.*psr.*w-reinforce"),
        (dict(correct=_bool([[T, F]]), method="psr"), "1-D"),
        (dict(correct=torch.tensor([0.3, 1.0]), method="psr"), "bool"),
        (dict(correct=torch.tensor([2, 0]), method="psr"), "bool"),
        (dict(correct=_bool([T, F, T]), method="grpo", group_size=2), "divide"),
        (dict(correct=_bool([T, F]), method="w-reinforce", lambda_psr=-0.1), "lambda_psr"),
    ],
)
def test_bad_input_raises_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        advantages(**kwargs)
