"""TRL GRPOTrainer subclass that trains with one of the four objectives of nsr.objectives.

Every objective sees binary rewards, as in the paper: a sample is positive iff its gathered reward
>= reward_threshold (with graded rewards the threshold decides how much partial credit counts;
1.0 means fully correct only). The trainer replaces this process's advantages by those of
nsr.objectives on that split (grpo: TRL's group-normalised advantages of the 0/1 reward). For psr /
nsr / w-reinforce it also zeroes the loss mask of excluded samples and recomputes the token-count
denominator, so excluded samples leave both the loss and its normaliser (the official code drops
them from the batch). The loss mask is TRL's completion_mask * tool_mask; excluding through
tool_mask, not the attention mask, keeps the forward pass unchanged and lets entropy cover every
sampled completion. ``frac_correct`` in the logs counts full credit (the task's accuracy), not
positives.

Two things TRL would repeat per row are done once per prompt (each switchable in NSRConfig):
rollouts come from nsr.sampling's shared-prefix decoder, the sampler evaluation uses
(``rollout_sampler``), and the loss forward runs each distinct prompt once and shares its KV cache,
kept in the autograd graph, with its rows, then runs the completions in length buckets without
their padding (``shared_prefix_forward``, nsr.trainer.shared_prefix). Same distribution, same
loss and gradient as TRL's paths (tests/test_rollouts.py, tests/test_trainer.py); on the embedded
default a step costs under a third of the CPU time (benchmarks/train_speed.py).

Modules: config (NSRConfig), nsr_trainer (NSRTrainer), shared_prefix (the loss forward), sampler
(the resumable data order), callbacks (the CSV log, the held-out evaluation), batch_filter (`subset`:
excluded samples leave the batch), group_filter (which groups train: a registry of pure functions,
light: no torch) and rollout_rows (several generation batches' rows as one batch, for its refill).

The names below are imported on first use (PEP 562), so `import nsr.trainer.group_filter` stays
light: the config checks run it at DAG-build time, where importing TRL would cost seconds.
"""

import importlib

_HOMES = {"EpochSeededRepeatSampler": "sampler", "HeldOutEvalCallback": "callbacks", "NSRConfig": "config",
          "NSRTrainer": "nsr_trainer", "ROLLOUT_SAMPLERS": "config", "TrainLogCallback": "callbacks"}

__all__ = sorted(_HOMES)


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value  # later lookups (and monkeypatching) see a plain module attribute
    return value
