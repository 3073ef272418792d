"""`batch_filter: subset`: excluded samples leave the rollout batch, as in the official code.

In TianHongZXY/RLVR-Decomposed, `verl/trainer/ppo/ray_trainer.py` keeps only the correct samples
for PSR (`batch.subset(correct_idx)`) and only the incorrect ones for NSR; `dp_actor.update_policy`
then splits what is left into mini-batches of `ppo_mini_batch_size` and takes one optimizer step
per mini-batch, the loss of each micro-batch being its token mean times
`len(micro-batch) / ppo_mini_batch_size` (`use_dynamic_bsz`), so a partial last mini-batch moves
the weights proportionally less. Per rollout batch PSR takes ceil(correct / mini-batch) steps and
NSR ceil(incorrect / mini-batch); GRPO and W-REINFORCE keep every sample and take all of them.

Here a generation batch of TRL (``steps_per_generation`` micro-batches of
``per_device_train_batch_size`` rows per process) becomes ``steps_per_generation`` *slots*: the
kept rows, in TRL's (shuffled) order, fill the micro-batches of mini-batch after mini-batch
(``per_device_train_batch_size x gradient_accumulation_steps`` rows each, per process); the slots
of optimizer steps that no mini-batch is left for are marked SKIP and cost nothing (the trainer
runs no forward or backward for them, so the optimizer finds no gradient and leaves weights,
moments and step count as they were). With several processes rows stay on the rank that
generated them and every rank takes max over ranks of ceil(kept on rank / per-rank mini-batch)
steps, so no rank waits for a collective the others skip; each rank's micro-batches are filled up
to per_device_train_batch_size rows with stand-in rows whose loss mask is all zero (a zero
gradient; TRL gathers per-row metrics and ZeRO-3 runs collective forwards, so every rank needs
the same rows).
"""

from __future__ import annotations

import torch

BATCH_FILTERS = ("mask", "subset")
SKIP = "nsr_skip_step"  # the slot belongs to an optimizer step that has no mini-batch
EMPTY = "nsr_empty_micro_batch"  # the slot's one row only stands in (zero loss mask)


def optimizer_steps(kept: int, mini_batch: int) -> int:
    """Optimizer steps of a rollout batch with ``kept`` samples: ceil(kept / mini_batch)."""
    return -(-int(kept) // int(mini_batch))


def take_rows(batch: dict, index: list[int]) -> dict:
    """The rows ``index`` of a TRL batch dict: per-row tensors and lists are indexed, everything
    else (the batch-level scalars, e.g. num_items_in_batch) is kept as it is."""
    size = len(batch["prompt_ids"])
    rows = torch.tensor(index, dtype=torch.long)
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.size(0) == size:
            out[key] = value[rows.to(value.device)]
        elif isinstance(value, list) and len(value) == size:
            out[key] = [value[i] for i in index]
        else:
            out[key] = value
    return out


def without_loss(batch: dict, first: int) -> dict:
    """``batch`` with its rows from ``first`` on made stand-ins: no loss (``tool_mask``, part of TRL's loss mask),
    no entropy (``sampled_mask``) and not kept (``kept``); they only fill a batch to a size every process shares."""
    stand_in = torch.arange(len(batch["prompt_ids"])) >= first
    for key in ("tool_mask", "sampled_mask"):
        if key in batch:
            batch[key] = batch[key] * ~stand_in.to(batch[key].device).unsqueeze(1)
    if "kept" in batch:
        batch["kept"] = batch["kept"] & ~stand_in.to(batch["kept"].device)
    return batch


def verl_normaliser(tokens: float, rows: int, mini_batch: int, num_processes: int, steps_per_generation: int,
                    accumulation: int) -> float:
    """The `num_items_in_batch` that makes TRL's token-mean ("dapo") loss of a micro-batch equal verl's
    ``token_mean(micro-batch) * rows / mini_batch``: TRL divides the token sum by
    num_items_in_batch / num_processes * accumulation / steps_per_generation."""
    return tokens * mini_batch / rows * num_processes * steps_per_generation / accumulation


def subset_slots(batch: dict, keep: torch.Tensor, *, micro_batch: int, accumulation: int, slots: int, steps: int,
                 num_processes: int = 1) -> list[dict]:
    """The ``slots`` micro-batches of one generation batch under `subset` (see the module's docstring).

    ``batch``: this process's generation batch in TRL's order, with TRL's loss mask
    (completion_mask * tool_mask) already zero on excluded rows; ``keep``: its rows that stay;
    ``steps``: the optimizer steps every process takes for it (the same on all ranks). With several
    processes every micro-batch is filled up to ``micro_batch`` rows with stand-ins (TRL gathers
    per-row metrics, which needs the same rows on every rank); with one, only an empty one gets one.
    """
    kept = keep.nonzero().flatten().tolist()
    mini_batch = micro_batch * accumulation
    out = []
    for slot in range(slots):
        step, micro = divmod(slot, accumulation)
        if step >= steps:
            out.append({SKIP: True})
            continue
        start = step * mini_batch + micro * micro_batch
        index = kept[start:min(start + micro_batch, (step + 1) * mini_batch)]
        width = micro_batch if num_processes > 1 else max(len(index), 1)
        part = without_loss(take_rows(batch, index + [0] * (width - len(index))), first=len(index))
        if index:
            tokens = float((part["completion_mask"] * part["tool_mask"]).sum())
            normaliser = verl_normaliser(tokens, len(index), mini_batch, num_processes, slots, accumulation)
        else:
            part[EMPTY], normaliser = True, 1.0
        part["num_items_in_batch"] = torch.tensor(normaliser, device=part["tool_mask"].device)
        out.append(part)
    return out
