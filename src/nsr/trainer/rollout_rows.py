"""Rows of several generation batches as one TRL batch dict: the refill of `train.group_filter`.

TRL pads each generation batch to its own widths: prompts on the left (``prompt_ids``, ``prompt_mask``),
completions on the right (``completion_ids`` with the pad token, the masks and per-token log-probabilities
with 0), and the keys spanning prompt and completion (``token_type_ids``, ``mm_token_type_ids`` of VLMs)
both ways. ``join_rows`` takes the chosen rows of each batch and pads them to the widest, so the joined
batch is the one TRL would have built from those rows in one generation (tests/trainer/test_group_filter.py
compares the two). Image tensors (``pixel_values`` with ``image_grid_thw`` etc.) are cut per row by TRL's
``split_pixel_values_by_grid`` first and put back by ``unsplit_pixel_values_by_grid``, as the `subset`
path does; a key whose rows cannot be joined stops the run naming it, never a silently wrong batch.
"""

from __future__ import annotations

import torch
from trl.trainer.utils import split_pixel_values_by_grid, unsplit_pixel_values_by_grid

from nsr.trainer.batch_filter import take_rows, without_loss

PROMPT_KEYS = ("prompt_ids", "prompt_mask")  # left-padded to the widest prompt
SEQUENCE_KEYS = ("token_type_ids", "mm_token_type_ids")  # prompt + completion: padded on both sides


def _per_row(value, rows: int) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dim() > 0 and value.size(0) == rows
    return isinstance(value, list) and len(value) == rows


def _pad(tensor: torch.Tensor, width: int, value, left: bool) -> torch.Tensor:
    missing = width - tensor.size(1)
    if missing <= 0:
        return tensor
    fill = tensor.new_full((tensor.size(0), missing, *tensor.shape[2:]), value)
    return torch.cat([fill, tensor] if left else [tensor, fill], dim=1)


def _join(key: str, parts: list[torch.Tensor], prompts: list[int], completions: list[int], pad_token_id: int):
    """One key's row tensors of several batches (``prompts`` / ``completions``: each batch's widths) as one tensor."""
    prompt_width, completion_width = max(prompts), max(completions)
    if key in PROMPT_KEYS:
        parts = [_pad(p, prompt_width, pad_token_id if key == "prompt_ids" else 0, left=True) for p in parts]
    elif key in SEQUENCE_KEYS:
        parts = [torch.cat([_pad(p[:, :w], prompt_width, 0, left=True),
                            _pad(p[:, w:], completion_width, 0, left=False)], dim=1) for p, w in zip(parts, prompts)]
    elif parts[0].dim() >= 2 and all(p.size(1) == w for p, w in zip(parts, completions)):
        parts = [_pad(p, completion_width, pad_token_id if key == "completion_ids" else 0, left=False) for p in parts]
    try:
        return torch.cat(parts)
    except RuntimeError as exc:
        shapes = ", ".join(str(tuple(p.shape)) for p in parts)
        raise ValueError(f"group_filter: the rollout key {key!r} cannot be joined across generation batches "
                         f"(shapes {shapes}): run this model with group_filter_max_batches 0 or 1") from exc


def join_rows(selections: list[tuple[dict, list[int]]], pad_token_id: int, stand_ins: int = 0) -> dict:
    """The rows ``index`` of each ``(batch, index)`` in order, then ``stand_ins`` copies of the first batch's row 0
    with no loss (batch_filter.without_loss), as one TRL batch dict. Batch-level values (``num_items_in_batch``)
    are the first batch's: the caller recomputes them for the joined rows."""
    split = [split_pixel_values_by_grid(batch) for batch, _ in selections]
    parts = [take_rows(batch, index) for batch, (_, index) in zip(split, selections)]
    if stand_ins:
        parts.append(take_rows(split[0], [0] * stand_ins))
    keys = list(parts[0])
    for part in parts:
        if list(part) != keys:
            raise ValueError(f"group_filter: generation batches with different keys ({keys} vs {list(part)})")
    sizes = [len(part["prompt_ids"]) for part in parts]
    prompts = [part["prompt_ids"].size(1) for part in parts]
    completions = [part["completion_ids"].size(1) for part in parts]
    joined = {}
    for key in keys:
        values = [part[key] for part in parts]
        rowwise = [_per_row(value, size) for value, size in zip(values, sizes)]
        if not any(rowwise):
            joined[key] = values[0]
        elif not all(rowwise) or any(type(value) is not type(values[0]) for value in values):
            raise ValueError(f"group_filter: the rollout key {key!r} is not one value per row in every "
                             "generation batch")
        elif isinstance(values[0], list):
            joined[key] = [item for value in values for item in value]
        else:
            joined[key] = _join(key, values, prompts, completions, pad_token_id)
    return unsplit_pixel_values_by_grid(without_loss(joined, first=sum(sizes) - stand_ins))
