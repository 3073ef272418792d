"""The training data order: TRL's RepeatSampler made resumable across epochs."""

from __future__ import annotations

import torch
from trl.trainer.utils import RepeatSampler


class EpochSeededRepeatSampler(RepeatSampler):
    """TRL's RepeatSampler whose order of an epoch depends on (seed, epoch) only.

    TRL's sampler draws one permutation per pass from a generator seeded once, so the sampler of a
    resumed run (a fresh one) would replay the first epoch's order in a later epoch. The Trainer
    calls set_epoch before every epoch (also the one a resume starts in, before skipping its
    trained batches); each pass then reseeds and draws as many permutations as an uninterrupted
    run had drawn by that epoch, so its order is the one the uninterrupted run uses.
    """

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if self.shuffle and self.seed is not None:
            self.generator.manual_seed(self.seed)
            for _ in range(self.epoch):
                torch.randperm(self.num_samples, generator=self.generator)
        return super().__iter__()
