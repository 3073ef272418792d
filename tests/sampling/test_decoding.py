"""nsr.sampling.decoding: shared-prefill sampler vs plain generate, logprobs, per-prompt seeds, prompt encoding."""

from __future__ import annotations

import numpy as np
import torch

from nsr.sampling import encode_prompt, shared_prefix_sample


def test_greedy_shared_cache_matches_plain_generate(model, tokenizer, prompts):
    ids = [encode_prompt(tokenizer, p) for p in prompts]
    # Use a token that plain greedy emits mid-way for one prompt as EOS, so rows stop at different steps.
    free = model.generate(torch.tensor([ids[0]]), do_sample=False, max_new_tokens=12, eos_token_id=None)[0, len(ids[0]) :]
    eos = int(free[4])
    # All prompts in ONE call (left padding), n=2 rows each; plain generate runs each prompt alone.
    shared = shared_prefix_sample(model, ids, 2, max_new_tokens=12, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id, temperature=0)
    lengths = set()
    for prompt, rows in zip(ids, shared):
        plain = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=12, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
        expected = plain[0, len(prompt) :].tolist()
        expected = expected[: expected.index(eos)] if eos in expected else expected
        assert rows == [expected, expected]
        lengths.add(len(expected))
    assert len(lengths) > 1 and min(lengths) < 12  # EOS stopping and row pruning were exercised


def test_sampled_tokens_carry_teacher_forced_logprobs(model, tokenizer, prompts):
    """Every row's cache/position/mask bookkeeping (incl. rows dropped at EOS) matches a fresh forward."""
    ids = [encode_prompt(tokenizer, p) for p in prompts[:3]]
    stops = list(range(40, 80))  # many "EOS" ids: completions of varied length
    tokens, logprobs = shared_prefix_sample(
        model, ids, 6, max_new_tokens=10, eos_token_id=stops, pad_token_id=tokenizer.pad_token_id, seeds=[1, 2, 3], return_logprobs=True
    )
    lengths = {len(t) for rows in tokens for t in rows}
    assert len(lengths) > 2
    for prompt, rows, lps in zip(ids, tokens, logprobs):
        for completion, lp in zip(rows, lps):
            assert not set(completion) & set(stops)
            full = torch.tensor([prompt + completion])
            with torch.no_grad():
                ref = model(full).logits[0, len(prompt) - 1 : -1].log_softmax(-1)
            expected = ref[torch.arange(len(completion)), torch.tensor(completion, dtype=torch.long)]
            assert torch.allclose(torch.tensor(lp), expected, atol=1e-4)


def test_tiny_top_p_is_greedy_and_seeds_are_per_prompt(model, tokenizer, prompts):
    ids = [encode_prompt(tokenizer, p) for p in prompts]
    kw = dict(max_new_tokens=8, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    greedy = shared_prefix_sample(model, ids, 3, temperature=0, **kw)
    assert shared_prefix_sample(model, ids, 3, top_p=1e-6, seeds=[9] * 5, **kw) == greedy
    seeds = [11, 12, 13, 14, 15]
    together = shared_prefix_sample(model, ids, 4, seeds=seeds, **kw)
    assert together == shared_prefix_sample(model, ids, 4, seeds=seeds, **kw)
    # A prompt's samples do not depend on which prompts share its call.
    alone = [shared_prefix_sample(model, [p], 4, seeds=[s], **kw)[0] for p, s in zip(ids, seeds)]
    assert alone == together
    assert shared_prefix_sample(model, ids, 4, seeds=[s + 1 for s in seeds], **kw) != together
    assert len({tuple(t) for t in together[0]}) > 1  # temperature 1 really samples


def test_chat_prompts_from_parquet_are_templated(tokenizer):
    messages = np.array([{"role": "user", "content": "A=1|max?"}], dtype=object)  # as pyarrow returns them
    assert encode_prompt(tokenizer, messages) == tokenizer("A=1|max?")["input_ids"]
