"""Fixtures shared across test folders: a tiny model with varied outputs (the sampler's tests and the
rollout-distribution tests draw from it), its tokenizer and its saved folder."""

from __future__ import annotations

import pytest
import torch

from nsr.tiny import TinyModelConfig, build_tiny_model, build_tokenizer


def _diverse_model(tokenizer):
    """Random weights at the default 0.02 scale make greedy repeat one token; a larger scale varies it."""
    model = build_tiny_model(tokenizer, TinyModelConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128), seed=0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
    return model.eval()


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="session")
def model(tokenizer):
    return _diverse_model(tokenizer)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, tokenizer, model):
    path = tmp_path_factory.mktemp("model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
