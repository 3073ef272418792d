"""Training rollouts (NSRTrainer, rollout_sampler='shared_prefix') draw from the distribution that
`nsr sample` draws from, and from the one TRL's own generate draws from: chi-square homogeneity of
the completion frequencies on one fixed model. The negative control (another temperature) shows
the test can tell distributions apart. The model is tests/conftest.py's tiny model with varied outputs."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from datasets import Dataset

from nsr.sampling.backends import HFSampler, SamplingSettings
from nsr.trainer import NSRConfig, NSRTrainer

PROMPTS = ["A=3 B=7|max?", "C=50 D=12 E=31|rank?"]
PER_PROMPT = 512
G = 64
LENGTH = 2  # two tokens: few enough distinct completions for frequency tests


def rollouts(model_dir, tok, tmp_path, sampler: str, temperature: float = 1.0, top_p: float = 1.0) -> list[Counter]:
    args = NSRConfig(output_dir=str(tmp_path / sampler), objective="psr", per_device_train_batch_size=G * len(PROMPTS),
                     num_generations=G, max_completion_length=LENGTH, temperature=temperature, top_p=top_p,
                     rollout_sampler=sampler, report_to="none", use_cpu=True, save_strategy="no", seed=3)
    dataset = Dataset.from_dict({"prompt": PROMPTS, "answer": ["B", "CED"]})
    trainer = NSRTrainer(model=str(model_dir), reward_funcs=lambda completions, **_: [0.0] * len(completions),
                         args=args, train_dataset=dataset, processing_class=tok)
    prompt_ids = [tok(p)["input_ids"] for p in PROMPTS for _ in range(G)]
    counts = [Counter() for _ in PROMPTS]
    for _ in range(PER_PROMPT // G):
        completion_ids, logprobs = trainer._generate_single_turn(prompt_ids, None, {}, G)
        assert logprobs is None and len(completion_ids) == len(prompt_ids)
        for row, ids in enumerate(completion_ids):
            # A finished completion ends with its EOS (the loss trains the model to stop), as TRL's do
            assert len(ids) == LENGTH or ids[-1] == tok.eos_token_id
            assert tok.eos_token_id not in ids[:-1]
            counts[row // G][tok.decode(ids, skip_special_tokens=True)] += 1
    return counts


def sampled(model_dir, temperature: float = 1.0, top_p: float = 1.0) -> list[Counter]:
    settings = SamplingSettings(num_samples=PER_PROMPT, temperature=temperature, top_p=top_p, max_new_tokens=LENGTH)
    texts = HFSampler(model_dir).sample(PROMPTS, seeds=[11, 12], settings=settings)
    return [Counter(per_prompt) for per_prompt in texts]


def homogeneity_p(a: Counter, b: Counter) -> float:
    """p-value of the chi-square test that two samples come from one distribution (rare categories pooled)."""
    na, nb = sum(a.values()), sum(b.values())
    total = a + b
    common = [k for k in total if total[k] * min(na, nb) / (na + nb) >= 5]
    rows = [[a[k], b[k]] for k in common]
    rows.append([na - sum(r[0] for r in rows), nb - sum(r[1] for r in rows)])
    rows = [r for r in rows if sum(r)]
    observed = torch.tensor(rows, dtype=torch.float64)
    expected = observed.sum(1, keepdim=True) * observed.sum(0, keepdim=True) / observed.sum()
    stat = ((observed - expected) ** 2 / expected).sum()
    dof = len(rows) - 1
    assert dof >= 3, "too few categories for the test to mean anything"
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), stat / 2))


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 0.9)])
def test_rollouts_follow_the_distribution_of_nsr_sample_and_of_trl_generate(model_dir, tokenizer, tmp_path, temperature,
                                                                            top_p):
    ours = rollouts(model_dir, tokenizer, tmp_path, "shared_prefix", temperature, top_p)
    reference = sampled(model_dir, temperature, top_p)
    trl = rollouts(model_dir, tokenizer, tmp_path, "trl", temperature, top_p)
    for mine, theirs, stock in zip(ours, reference, trl):
        assert homogeneity_p(mine, theirs) > 1e-3
        assert homogeneity_p(mine, stock) > 1e-3


def test_the_frequency_test_tells_temperatures_apart(model_dir, tokenizer, tmp_path):
    ours = rollouts(model_dir, tokenizer, tmp_path, "shared_prefix", 1.0)
    colder = sampled(model_dir, temperature=0.6)
    assert all(homogeneity_p(mine, theirs) < 1e-3 for mine, theirs in zip(ours, colder))


def test_shared_prefix_refuses_settings_it_does_not_sample_with(tmp_path):
    with pytest.raises(ValueError, match="top_k=5: rollout_sampler 'shared_prefix' samples with temperature"):
        NSRConfig(output_dir=str(tmp_path), top_k=5, use_cpu=True)
    with pytest.raises(ValueError, match="rollout_sampler must be one of"):
        NSRConfig(output_dir=str(tmp_path), rollout_sampler="vllm", use_cpu=True)
    assert NSRConfig(output_dir=str(tmp_path), top_k=5, rollout_sampler="trl", use_cpu=True).top_k == 5
