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
(the resumable data order), callbacks (the CSV log, the held-out evaluation).
"""

from nsr.trainer.callbacks import HeldOutEvalCallback, TrainLogCallback
from nsr.trainer.config import ROLLOUT_SAMPLERS, NSRConfig
from nsr.trainer.nsr_trainer import NSRTrainer
from nsr.trainer.sampler import EpochSeededRepeatSampler

__all__ = ["EpochSeededRepeatSampler", "HeldOutEvalCallback", "NSRConfig", "NSRTrainer", "ROLLOUT_SAMPLERS",
           "TrainLogCallback"]
