"""Shared-prefix decoding (one prefill per prompt, its KV cache repeated n times; see the package
docstring) and the prompt encoding that both backends and the trainer's held-out evaluation use.
torch is imported inside the functions, so importing nsr.sampling stays light."""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from nsr.io import InputError


def problem_seed(seed: int, problem_id: str) -> int:
    """A stable per-problem seed (Python's hash() is salted per process, so not that)."""
    digest = hashlib.sha256(f"{seed}\x00{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def plain_prompt(value: Any) -> Any:
    """Parquet hands chat messages back as numpy arrays of dicts: turn them into lists."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: plain_prompt(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_prompt(v) for v in value]
    return value


def encode_prompt(tokenizer, prompt: Any) -> list[int]:
    """Prompt token ids exactly as TRL's GRPOTrainer builds them (plain text or chat messages)."""
    prompt = plain_prompt(prompt)
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(ids["input_ids"])


def encode_problems(processing, model, prompts: Sequence[Any], images: Sequence[Any] | None = None) -> tuple[list[list[int]], dict]:
    """Prompt token ids (image tokens expanded) and the prefill's pixel inputs (images in prompt order),
    for shared_prefix_sample. ``processing``: a tokenizer, or a processor for image problems."""
    import torch

    from nsr.vlm import chat_with_image, to_pil, tokenizer_of

    if images is None:
        return [encode_prompt(tokenizer_of(processing), p) for p in prompts], {}
    if not hasattr(processing, "image_processor"):
        raise InputError("problems with images need a vision-language model folder (one with a processor config)")
    ids, pixels, grids = [], [], []
    for prompt, image in zip(prompts, images):
        text = processing.apply_chat_template(chat_with_image(plain_prompt(prompt)), add_generation_prompt=True, tokenize=False)
        enc = processing(text=[text], images=[to_pil(image)], return_tensors="pt")
        ids.append(enc["input_ids"][0].tolist())
        pixels.append(enc["pixel_values"])
        grids.append(enc["image_grid_thw"])
    return ids, {"pixel_values": torch.cat(pixels).to(model.device, model.dtype), "image_grid_thw": torch.cat(grids).to(model.device)}


def eos_ids(model, tokenizer=None) -> list[int]:
    eos = model.generation_config.eos_token_id
    if eos is None and tokenizer is not None:
        eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("model has no eos_token_id in its generation_config or tokenizer")
    return [eos] if isinstance(eos, int) else list(eos)


def shared_prefix_sample(
    model,
    prompt_ids: Sequence[Sequence[int]],
    num_samples: int,
    *,
    max_new_tokens: int,
    eos_token_id: int | Sequence[int],
    pad_token_id: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seeds: Sequence[int] | None = None,
    extra_inputs: dict | None = None,
    return_logprobs: bool = False,
    return_entropies: bool = False,
    keep_eos: bool = False,
):
    """Sample ``num_samples`` continuations of each prompt; returns token ids [prompt][sample] (EOS cut).

    The prompts (left-padded) go through the model once; the cache is then repeated
    ``num_samples`` times per prompt. ``extra_inputs`` are passed to the prefill only (the place
    for a processor's pixel_values and image_grid_thw, images in prompt order). Models with
    multimodal rope (Qwen2-VL family) get their 3D positions from the model's get_rope_index at
    prefill and text positions shifted by the per-prompt rope delta while decoding, as
    generate() does. temperature 0 decodes greedily. ``seeds``: one
    per prompt. With ``return_logprobs`` also the model's (unwarped) log-probability of each kept
    token, same nesting. With ``return_entropies`` also the entropy of the sampling distribution
    (logits / temperature, before top-p; the raw logits when greedy) at every generated position,
    the EOS position included (as TRL's training entropy), same nesting; both extras come after
    the tokens in that order. ``keep_eos``: each finished row ends with its EOS token (as TRL's
    rollouts, whose loss trains the model to stop); the log-probabilities then include it too.
    """
    import torch
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    device = model.device
    num_prompts = len(prompt_ids)
    if seeds is None:
        seeds = list(range(num_prompts))
    width = max(len(p) for p in prompt_ids)
    input_ids = torch.full((num_prompts, width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((num_prompts, width), dtype=torch.long)
    for i, ids in enumerate(prompt_ids):
        input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        mask[i, width - len(ids) :] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    # A plain forward numbers positions 0..width-1 regardless of padding; generate() derives
    # them from the mask, and so must we or left-padded prompts would shift.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    extra_inputs = dict(extra_inputs or {})
    mrope = _mrope_prefill(model, input_ids, mask, positions, extra_inputs)
    prefill_positions, rope_deltas = mrope if mrope is not None else (positions, None)

    with torch.inference_mode():
        out = model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=prefill_positions,
            use_cache=True,
            logits_to_keep=1,
            **extra_inputs,
        )
        cache = out.cache
        cache.batch_repeat_interleave(num_samples)
        logits = out.logits[:, -1].float().repeat_interleave(num_samples, dim=0)
        mask = mask.repeat_interleave(num_samples, dim=0)
        next_pos = positions[:, -1].repeat_interleave(num_samples) + 1
        if rope_deltas is not None:  # one delta per prompt: repeat it for the prompt's n rows
            rope_deltas = rope_deltas.reshape(-1).repeat_interleave(num_samples)
        rows = torch.arange(num_prompts * num_samples, device=device)  # global index of each live row
        owner = torch.arange(num_prompts, device=device).repeat_interleave(num_samples)  # its prompt

        tokens = torch.full((num_prompts * num_samples, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
        lengths = torch.zeros(num_prompts * num_samples, dtype=torch.long)
        logprobs = torch.zeros((num_prompts * num_samples, max_new_tokens), device=device) if return_logprobs else None
        entropies = torch.zeros((num_prompts * num_samples, max_new_tokens), device=device) if return_entropies else None
        positions_seen = torch.zeros(num_prompts * num_samples, dtype=torch.long)  # generated positions incl. EOS
        eos = torch.tensor(list(eos_token_id) if not isinstance(eos_token_id, int) else [eos_token_id], device=device)
        greedy = temperature == 0
        warpers = LogitsProcessorList()
        if not greedy:
            if temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(temperature))
            if top_p < 1.0:
                warpers.append(TopPLogitsWarper(top_p))
        generators = []
        for s in seeds:
            g = torch.Generator(device=device)
            g.manual_seed(int(s))
            generators.append(g)

        for step in range(max_new_tokens):
            if greedy:
                chosen = logits.argmax(-1)
            else:
                probs = warpers(tokens[rows, :step], logits).softmax(-1)
                # Exponential race, argmax(p / E) with E ~ Exp(1), draws exactly from p (as vLLM samples);
                # each prompt's noise comes from its own generator and rows stay grouped by prompt, so
                # a prompt's draws do not depend on the other prompts in the call.
                prompt_idx, counts = torch.unique_consecutive(owner, return_counts=True)
                noise = torch.cat(
                    [
                        torch.empty(c, probs.shape[1], device=device).exponential_(generator=generators[p])
                        for p, c in zip(prompt_idx.tolist(), counts.tolist())
                    ]
                )
                # A zero draw would make 0/0 = nan for a zero-mass token; the smallest float keeps it a win only where p > 0.
                chosen = (probs / noise.clamp_(min=torch.finfo(noise.dtype).tiny)).argmax(-1)
            tokens[rows, step] = chosen
            if return_logprobs:
                logprobs[rows, step] = logits.log_softmax(-1).gather(1, chosen[:, None]).squeeze(1)
            if return_entropies:
                scaled = (logits if greedy else logits / temperature).log_softmax(-1)
                entropies[rows, step] = -(scaled.exp() * scaled).sum(-1)
            positions_seen[rows.cpu()] += 1
            done = torch.isin(chosen, eos)
            lengths[rows[~done].cpu()] += 1
            if done.all() or step == max_new_tokens - 1:
                break
            if done.any():  # drop finished rows so later steps only compute live ones
                keep = (~done).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                rows, owner, chosen, mask, next_pos = rows[keep], owner[keep], chosen[keep], mask[keep], next_pos[keep]
                if rope_deltas is not None:
                    rope_deltas = rope_deltas[keep]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            out = model(
                input_ids=chosen[:, None],
                attention_mask=mask,
                position_ids=_decode_positions(next_pos, rope_deltas),
                cache=cache,
                use_cache=True,
            )
            cache = out.cache
            logits = out.logits[:, -1].float()
            next_pos = next_pos + 1

    def nest(values, counts=lengths):
        values = values.cpu()
        flat = [values[i, : counts[i]].tolist() for i in range(num_prompts * num_samples)]
        return [flat[p * num_samples : (p + 1) * num_samples] for p in range(num_prompts)]

    kept = positions_seen if keep_eos else lengths
    extras = ([nest(logprobs, kept)] if return_logprobs else []) + ([nest(entropies, positions_seen)] if return_entropies else [])
    return (nest(tokens, kept), *extras) if extras else nest(tokens, kept)


def _mrope_prefill(model, input_ids, mask, positions, extra_inputs):
    """For multimodal-rope models: ([text; t; h; w] prefill positions, rope delta per prompt), else None.

    Vision tokens share positions (3D grid), so after an image the text positions run behind the
    token count; the delta (max position + 1 - length) shifts every decoded token accordingly.
    """
    import torch

    inner = getattr(model, "model", None)
    if not hasattr(inner, "get_rope_index"):
        return None
    config = model.config
    mm_types = torch.zeros_like(input_ids, dtype=torch.int)
    mm_types[input_ids == config.image_token_id] = 1
    if getattr(config, "video_token_id", None) is not None:
        mm_types[input_ids == config.video_token_id] = 2
    extra_inputs["mm_token_type_ids"] = mm_types
    with torch.inference_mode():
        rope, deltas = inner.get_rope_index(
            input_ids, mm_token_type_ids=mm_types, attention_mask=mask,
            image_grid_thw=extra_inputs.get("image_grid_thw"), video_grid_thw=extra_inputs.get("video_grid_thw"),
        )
    # Row 0 holds the plain text positions (the model builds its attention mask from them), as generate() passes.
    return torch.cat([positions[None], rope.to(positions)], dim=0), deltas.to(positions.device)


def _decode_positions(next_pos, rope_deltas):
    import torch

    if rope_deltas is None:
        return next_pos[:, None]
    text = next_pos[None, :, None]
    return torch.cat([text, (text + rope_deltas[None, :, None]).expand(3, -1, -1)], dim=0)
