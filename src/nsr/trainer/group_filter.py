"""`train.group_filter`: which groups of ``num_generations`` rollouts of one prompt train at all.

A registry of pure functions (verl core_algos style), ``(positives, size) -> keep``: ``positives``
holds the positive samples (reward >= reward_threshold) of each group, ``size`` is the group size,
and the result says which groups stay. They work elementwise on torch tensors, numpy arrays and
plain ints alike, so this module needs neither torch nor TRL: the study's config checks, run when
Snakemake builds the DAG, import it.

- ``all`` (default): every group, today's runs bit for bit;
- ``mixed``: 0 < positives < size, DAPO's dynamic sampling (verl's ``algorithm.filter_groups`` with
  the ``acc`` metric keeps the groups whose accuracies are not all equal);
- ``unsolved``: no positive sample, the zero-success restriction (Yuan et al. 2026);
- ``solved``: at least one positive sample.

The filter acts before the objective's sample-level exclusion (PSR drops negatives, NSR
positives). Some pairs leave nothing to learn: a group is ``unsolved`` (no positive sample),
``mixed`` or ``all-positive``, each filter keeps some of these kinds and each objective learns from
some (``LEARNS_FROM``, checked against nsr.objectives.advantages by the tests); ``refusal`` names a
pair whose two sets are disjoint. The config checks, ``nsr train`` and NSRConfig all refuse it.

Refill (``group_filter_max_batches``) draws its prompts from ``refill_prompts``, a stream fixed by
(seed, optimizer step, refill index), so a resumed run draws what an uninterrupted one draws, and
``take_in_order`` keeps the surviving groups in order within each process's share of the batch.
"""

from __future__ import annotations

import random
from typing import Callable

GROUP_FILTERS: dict[str, Callable] = {}
GROUP_KINDS = ("unsolved", "mixed", "all-positive")
_KIND_TEXT = {"unsolved": "groups with no positive sample", "mixed": "groups with both positive and negative samples",
              "all-positive": "groups whose samples are all positive"}
# The group kinds each objective's advantages are nonzero on (for a kept sample): GRPO's are zero
# wherever a group's rewards are all equal, PSR keeps positives only, NSR negatives only.
LEARNS_FROM = {"grpo": frozenset({"mixed"}), "psr": frozenset({"mixed", "all-positive"}),
               "nsr": frozenset({"unsolved", "mixed"}), "w-reinforce": frozenset(GROUP_KINDS)}
_WHY_NOTHING = {"grpo": "every advantage is zero", "psr": "it learns from positive samples only",
                "nsr": "it learns from negative samples only", "w-reinforce": "it learns from every sample"}


def register(name: str):
    def decorator(fn):
        GROUP_FILTERS[name] = fn
        return fn

    return decorator


@register("all")
def keep_all(positives, size):
    """Every group."""
    return positives >= 0


@register("mixed")
def keep_mixed(positives, size):
    """Groups with positive and negative samples (DAPO's dynamic sampling)."""
    return (positives > 0) & (positives < size)


@register("unsolved")
def keep_unsolved(positives, size):
    """Groups with no positive sample (the zero-success restriction)."""
    return positives == 0


@register("solved")
def keep_solved(positives, size):
    """Groups with at least one positive sample."""
    return positives >= 1


def kinds_kept(group_filter: str) -> frozenset[str]:
    """The group kinds ``group_filter`` keeps, found by applying it to a group of 2 with 0, 1 and 2 positives."""
    keep = GROUP_FILTERS[group_filter]
    return frozenset(kind for positives, kind in enumerate(GROUP_KINDS) if bool(keep(positives, 2)))


def refusal(objective: str, group_filter: str, objective_text: str | None = None) -> str | None:
    """Why ``objective`` learns nothing from the groups ``group_filter`` keeps, to follow the filter's name
    ("keeps only groups with no positive sample, from which objective 'grpo' learns nothing (every advantage
    is zero)"; ``objective_text`` names the objective otherwise, e.g. "--mode grpo"). None when it learns from
    some (or either name is unknown: other checks name those)."""
    if objective not in LEARNS_FROM or group_filter not in GROUP_FILTERS:
        return None
    kept = kinds_kept(group_filter)
    if kept & LEARNS_FROM[objective]:
        return None
    kinds = " or ".join(_KIND_TEXT[kind] for kind in GROUP_KINDS if kind in kept) or "no group"
    return (f"keeps only {kinds}, from which {objective_text or f'objective {objective!r}'} learns nothing "
            f"({_WHY_NOTHING[objective]})")


def take_in_order(keep, group: int, rows_per_process: int, room: list[int]) -> list[bool]:
    """Of the groups ``keep`` marks, those taken in order while every process holding a row of the group has
    room for it. Groups are TRL's runs of ``group`` rows in the global order, process p holding rows
    p * rows_per_process onwards (a group may span two); ``room`` (free rows per process) is updated in place.
    The batch is full when no process has room left."""
    taken = []
    for index, wanted in enumerate(keep):
        need: dict[int, int] = {}
        for row in range(index * group, (index + 1) * group):
            need[row // rows_per_process] = need.get(row // rows_per_process, 0) + 1
        fits = bool(wanted) and all(room[process] >= rows for process, rows in need.items())
        if fits:
            for process, rows in need.items():
                room[process] -= rows
        taken.append(fits)
    return taken


def refill_prompts(seed: int, step: int, refill: int, groups: int, dataset_size: int) -> list[int]:
    """Dataset indices of the ``groups`` prompts of refill batch ``refill`` (1, 2, ...) of optimizer step ``step``.

    The refills of one step read one stream of permutations of the dataset, each seeded by (seed, step,
    pass), refill k taking its k-th block: no prompt repeats within the step's refills until the dataset is
    exhausted. A function of its arguments only, so a resumed run draws the same prompts (Python's
    random seeds a string through SHA-512: the same on every platform and run).
    """
    if refill < 1 or groups < 1 or dataset_size < 1:
        raise ValueError(f"refill_prompts needs refill, groups and dataset_size >= 1, got {refill}, {groups}, "
                         f"{dataset_size}")
    start = (refill - 1) * groups
    pass_index, offset = divmod(start, dataset_size)
    indices: list[int] = []
    while len(indices) < groups:
        order = list(range(dataset_size))
        random.Random(f"nsr-refill:{seed}:{step}:{pass_index}").shuffle(order)
        indices += order[offset:offset + groups - len(indices)]
        pass_index, offset = pass_index + 1, 0
    return indices
