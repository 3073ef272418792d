"""The four objectives of the decomposed-RLVR study as per-sample advantages (pure torch).

Each method maps binary correctness to ``(adv, keep)``: ``adv`` is the per-sample advantage and
``keep`` says whether the sample enters the loss at all. An excluded sample (keep False) is
removed from the loss and from its token-count denominator by the trainer; it is not the same
as an advantage of 0, which would still count its tokens and dilute the gradient.

Methods register by name (verl core_algos style), so a new objective is one small function.
"""

from __future__ import annotations

from typing import Callable

import torch

# Same epsilon as TRL 1.16's GRPOTrainer (advantages / (std + 1e-4)).
GRPO_EPS = 1e-4

_ADVANTAGE_FNS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {}


def register(name: str):
    def decorator(fn):
        _ADVANTAGE_FNS[name] = fn
        return fn

    return decorator


def methods() -> list[str]:
    return sorted(_ADVANTAGE_FNS)


@register("grpo")
def grpo_advantages(correct: torch.Tensor, group_size: int | None = None, **_) -> tuple[torch.Tensor, torch.Tensor]:
    """(r - mean_g) / (std_g + 1e-4) per group of consecutive samples, as TRL with scale_rewards="group".

    TRL's std is Bessel-corrected (unbiased); a group of one has an undefined std, which TRL
    turns into advantage 0 (nan_to_num), and so do we.
    """
    rewards = correct.float()
    groups = rewards.view(-1, group_size or rewards.numel())
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True) if groups.size(1) > 1 else torch.full_like(mean, float("nan"))
    adv = torch.nan_to_num((groups - mean) / (std + GRPO_EPS), nan=0.0).view(-1)
    return adv, torch.ones_like(correct)


@register("psr")
def psr_advantages(correct: torch.Tensor, **_) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive sample reinforcement: +1 on correct samples; incorrect ones are excluded."""
    return correct.float(), correct.clone()


@register("nsr")
def nsr_advantages(correct: torch.Tensor, **_) -> tuple[torch.Tensor, torch.Tensor]:
    """Negative sample reinforcement: -1 on incorrect samples; correct ones are excluded."""
    return torch.where(correct, 0.0, -1.0).float(), ~correct


@register("w-reinforce")
def w_reinforce_advantages(correct: torch.Tensor, lambda_psr: float = 0.1, **_) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted REINFORCE: +lambda_psr on correct, -1 on incorrect; every sample kept."""
    return torch.where(correct, float(lambda_psr), -1.0).float(), torch.ones_like(correct)


def keeps_every_sample(method: str) -> bool:
    """Whether the objective trains on every sample (grpo, w-reinforce) or excludes some (psr, nsr)."""
    return bool(advantages(torch.tensor([True, False]), method, group_size=2)[1].all())


def advantages(
    correct, method: str, lambda_psr: float = 0.1, group_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and keep-mask for a flat batch of samples (groups are consecutive runs of ``group_size``).

    ``correct``: 1-D bool tensor (0/1 integers are accepted). Returns float ``adv`` and bool ``keep``,
    both shaped like ``correct`` and on its device.
    """
    if method not in _ADVANTAGE_FNS:
        raise ValueError(f"unknown objective {method!r}; known objectives: {methods()}")
    correct = torch.as_tensor(correct)
    if correct.dim() != 1:
        raise ValueError(f"correct must be a 1-D tensor, got shape {tuple(correct.shape)}")
    if correct.dtype != torch.bool:
        if correct.is_floating_point() or not bool(((correct == 0) | (correct == 1)).all()):
            raise ValueError("correct must be a bool tensor (or integers 0/1)")
        correct = correct.bool()
    if lambda_psr < 0:
        raise ValueError(f"lambda_psr must be >= 0, got {lambda_psr}")
    if group_size is not None and (group_size < 1 or correct.numel() % group_size):
        raise ValueError(f"group_size {group_size} must be >= 1 and divide the batch size {correct.numel()}")
    return _ADVANTAGE_FNS[method](correct, lambda_psr=lambda_psr, group_size=group_size)
