"""The loss forward that runs each distinct prompt once (NSRConfig.shared_prefix_forward).

TRL's loss forward runs every row of a generation batch in full: the prompt ``num_generations``
times, and every completion padded to the batch's longest. Here each distinct prompt runs once,
its KV cache (still in the autograd graph) is gathered for the rows that share it, and the
completions run in a few length buckets, each cut to its own longest row, so padding past a row's
EOS is not computed (the embedded default's completions average 3.4 tokens where the batch's
longest is about 8). Rows are causal, so the kept positions get what the padded forward gives them;
padded positions get log-probability and entropy 0, which the completion mask drops.
"""

from __future__ import annotations

import copy

import torch

# Arguments of TRL's loss forward that a text-only batch leaves None (the rest are image inputs).
PLAIN_FORWARD_KWARGS = ("compute_entropy", "compute_aux_loss", "batch_size")
# Config fields that make a model's logits more than its LM head's output (TRL's fused head knows them).
LOGIT_SCALINGS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")
# What one more backbone call costs, in completion tokens (its fixed Python and kernel-launch work,
# forward and backward), measured on the embedded default's 2 x 128 model on one CPU thread.
BUCKET_CALL_COST = 64


def can_share_prompts(model, text_config, forward_args, forward_kwargs) -> bool:
    """Whether a loss forward called with these arguments may share prompts: a plain text causal LM whose
    logits are its LM head's output (no soft-capping or scaling) and no MoE aux loss."""
    if forward_args or forward_kwargs.get("compute_aux_loss"):
        return False
    if any(v is not None for k, v in forward_kwargs.items() if k not in PLAIN_FORWARD_KWARGS):
        return False
    return all(getattr(text_config, name, None) in (None, 1.0) for name in LOGIT_SCALINGS)


def completion_buckets(lengths: list[int], call_cost: float = BUCKET_CALL_COST) -> list[int]:
    """Bucket bounds over rows sorted by length: the ascending widths ``w`` that minimise
    sum(rows in bucket x w + call_cost); each bucket holds the rows whose length is at most its
    width and more than the previous one's. Exact (dynamic programming over the distinct lengths)."""
    widths = sorted(set(lengths))
    if not widths:
        return []
    counts = [sum(1 for n in lengths if n <= w) for w in widths]  # rows up to each width
    best = [0.0] + [float("inf")] * len(widths)  # best[j]: cost of covering the rows up to widths[j-1]
    cut = [0] * (len(widths) + 1)
    for j in range(1, len(widths) + 1):
        for i in range(j):  # last bucket: the rows with widths[i] .. widths[j-1], computed at width widths[j-1]
            rows = counts[j - 1] - (counts[i - 1] if i else 0)
            cost = best[i] + rows * widths[j - 1] + call_cost
            if cost < best[j]:
                best[j], cut[j] = cost, i
    bounds, j = [], len(widths)
    while j:
        bounds.append(widths[j - 1])
        j = cut[j]
    return bounds[::-1]


def select_cache(cache, indices: torch.Tensor):
    """A cache holding ``indices``' rows of ``cache``, which stays as it is (its layers are copied, their
    tensors indexed: the gather stays in the autograd graph)."""
    selected = copy.copy(cache)
    selected.layers = [copy.copy(layer) for layer in cache.layers]
    selected.batch_select_indices(indices)
    return selected


def shared_prefix_logps(model, input_ids, attention_mask, logits_to_keep: int, temperature: float,
                        compute_entropy: bool, *, autocast, cast_lm_head_to_fp32: bool = False,
                        call_cost: float | None = None):
    """Per-token log-probabilities (and entropies, detached) of the completions at ``temperature``, as TRL's
    loss forward computes them from ``input_ids`` = prompt (left-padded) + completion (right-padded).
    ``autocast``: a context manager factory (the accelerator's); ``call_cost``: completion_buckets' (default
    BUCKET_CALL_COST)."""
    backbone = getattr(model, model.base_model_prefix)
    width = input_ids.size(1) - logits_to_keep
    # TRL shuffles a generation batch's rows before the loss: find each row's prompt by value.
    prompts, owner = torch.unique(torch.cat([input_ids[:, :width], attention_mask[:, :width]], dim=1), dim=0,
                                  return_inverse=True)
    positions = torch.arange(input_ids.size(1), device=input_ids.device)
    lengths = attention_mask[:, width:].sum(1).clamp(min=1)  # completion tokens up to and with EOS
    order = torch.argsort(lengths, stable=True)
    bounds = completion_buckets(lengths.tolist(), BUCKET_CALL_COST if call_cost is None else call_cost)
    logps, entropies, start = [], [], 0
    with autocast():
        prompt = backbone(input_ids=prompts[:, :width], attention_mask=prompts[:, width:], use_cache=True,
                          position_ids=positions[:width].expand(len(prompts), -1))
    for bound in bounds:
        stop = start + int((lengths[order[start:]] <= bound).sum())
        rows = order[start:stop]
        with autocast():
            # The hidden state before completion token t predicts it: the prompt's last, then the completion's own.
            hidden = [prompt.last_hidden_state[owner[rows], -1:]]
            if bound > 1:
                end = width + bound - 1
                hidden.append(backbone(input_ids=input_ids[rows, width:end], attention_mask=attention_mask[rows, :end],
                                       cache=select_cache(prompt.past_key_values, owner[rows]), use_cache=True,
                                       position_ids=positions[width:end].expand(len(rows), -1)).last_hidden_state)
            hidden = torch.cat(hidden, dim=1)
            if cast_lm_head_to_fp32:
                hidden = hidden.float()
            logits = model.get_output_embeddings()(hidden).float() / temperature
        log_probs = logits.log_softmax(-1)
        pad = logits_to_keep - bound
        logps.append(torch.nn.functional.pad(
            log_probs.gather(-1, input_ids[rows, width:width + bound, None]).squeeze(-1), (0, pad)))
        if compute_entropy:
            entropies.append(torch.nn.functional.pad(-(log_probs.exp() * log_probs).sum(-1).detach(), (0, pad)))
        start = stop
    restore = torch.argsort(order)  # back to the batch's row order
    return torch.cat(logps)[restore], (torch.cat(entropies)[restore] if compute_entropy else None)
