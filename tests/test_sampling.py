"""nsr.sampling: shared-prefill sampler vs plain generate, determinism, resume, CLI errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from nsr import sampling
from nsr.cli import main as cli_main
from nsr.io import InputError
from nsr.rewards import extract_answer
from nsr.sampling import SamplingSettings, encode_prompt, sample_to_file, shared_prefix_sample
from nsr.tiny import TinyModelConfig, build_tiny_model, build_tokenizer

_REAL_SAMPLE = sampling.HFSampler.sample
PROMPTS = ["S=57 A=92 Z=33|max?", "F=35 O=61|min?", "hello, a longer prompt than the others|2nd?", "x", "Q=1 R=2 T=3|sum?"]


def _diverse_model(tokenizer):
    """Random weights at the default 0.02 scale make greedy repeat one token; a larger scale varies it."""
    model = build_tiny_model(tokenizer, TinyModelConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128), seed=0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    return _diverse_model(tokenizer)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer, model):
    path = tmp_path_factory.mktemp("model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture()
def problems():
    return pd.DataFrame({"problem_id": [f"p{i}" for i in range(len(PROMPTS))], "prompt": PROMPTS, "answer": ["A", "F", "Z", "1", "6"]})


def test_greedy_shared_cache_matches_plain_generate(model, tokenizer):
    ids = [encode_prompt(tokenizer, p) for p in PROMPTS]
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


def test_sampled_tokens_carry_teacher_forced_logprobs(model, tokenizer):
    """Every row's cache/position/mask bookkeeping (incl. rows dropped at EOS) matches a fresh forward."""
    ids = [encode_prompt(tokenizer, p) for p in PROMPTS[:3]]
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


def test_tiny_top_p_is_greedy_and_seeds_are_per_prompt(model, tokenizer):
    ids = [encode_prompt(tokenizer, p) for p in PROMPTS]
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


def test_sample_to_file_schema_and_determinism(model_dir, problems, tmp_path):
    settings = SamplingSettings(num_samples=4, max_new_tokens=6, seed=3)
    frame = sample_to_file(model_dir, problems, tmp_path / "a.parquet", settings, backend="hf", problems_per_call=2, reward_threshold=0.5, progress=False)
    assert list(frame.columns) == list(sampling.SAMPLE_COLUMNS)
    assert len(frame) == len(problems) * 4
    assert list(frame["problem_id"].unique()) == list(problems["problem_id"])
    assert frame.groupby("problem_id")["sample_idx"].apply(list).map(lambda v: v == [0, 1, 2, 3]).all()
    assert (frame["correct"] == (frame["reward"] >= 0.5)).all()
    assert (frame["extracted"] == frame["completion"].map(extract_answer)).all()
    assert (frame["answer"] == frame["problem_id"].map(dict(zip(problems["problem_id"], problems["answer"])))).all()
    on_disk = pd.read_parquet(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(on_disk, frame)
    assert on_disk.attrs["nsr_sampling"]["seed"] == 3
    assert not (tmp_path / "a.parquet.partial").exists()
    # Same seed -> same file, whatever the chunking; another seed -> other samples.
    again = sample_to_file(model_dir, problems, tmp_path / "b.parquet", settings, backend="hf", problems_per_call=5, progress=False)
    pd.testing.assert_frame_equal(again, frame)
    other = sample_to_file(model_dir, problems, tmp_path / "c.parquet", SamplingSettings(4, max_new_tokens=6, seed=4), backend="hf", progress=False)
    assert not other["completion"].equals(frame["completion"])


def _kill_on_call(monkeypatch, call: int) -> list[int]:
    """Make HFSampler.sample raise (a simulated kill) on its ``call``-th use; returns the call log."""
    calls = []

    def sample(self, prompts, seeds, settings):
        calls.append(len(prompts))
        if len(calls) == call:
            raise KeyboardInterrupt("simulated kill")
        return _REAL_SAMPLE(self, prompts, seeds, settings)

    monkeypatch.setattr(sampling.HFSampler, "sample", sample)
    return calls


def test_interrupted_then_resumed_run_equals_uninterrupted(model_dir, problems, tmp_path, monkeypatch):
    settings = SamplingSettings(num_samples=3, max_new_tokens=5, seed=1)
    reference = sample_to_file(model_dir, problems, tmp_path / "ref.parquet", settings, backend="hf", problems_per_call=2, progress=False)

    calls = _kill_on_call(monkeypatch, 2)
    out = tmp_path / "run.parquet"
    with pytest.raises(KeyboardInterrupt):
        sample_to_file(model_dir, problems, out, settings, backend="hf", problems_per_call=2, progress=False)
    assert not out.exists()
    assert len(list((tmp_path / "run.parquet.partial").glob("chunk-*.parquet"))) == 1

    calls = _kill_on_call(monkeypatch, 0)  # 0: never kill, just log the calls
    resumed = sample_to_file(model_dir, problems, out, settings, backend="hf", problems_per_call=2, progress=False)
    assert calls == [2, 1]  # only the 3 unfinished problems were sampled
    pd.testing.assert_frame_equal(resumed, reference)
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tmp_path / "ref.parquet"))
    assert not (tmp_path / "run.parquet.partial").exists()


def test_changed_settings_discard_stale_partials(model_dir, problems, tmp_path, monkeypatch):
    settings = SamplingSettings(num_samples=2, max_new_tokens=4, seed=1)
    out = tmp_path / "s.parquet"
    _kill_on_call(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        sample_to_file(model_dir, problems, out, settings, backend="hf", progress=False)
    _kill_on_call(monkeypatch, 0)
    other = SamplingSettings(num_samples=2, max_new_tokens=4, seed=2)
    frame = sample_to_file(model_dir, problems, out, other, backend="hf", progress=False)
    fresh = sample_to_file(model_dir, problems, tmp_path / "fresh.parquet", other, backend="hf", progress=False)
    pd.testing.assert_frame_equal(frame, fresh)


def test_cli_with_seed_guide_flags(model_dir, problems, tmp_path, capsys):
    data = tmp_path / "test.parquet"
    problems.to_parquet(data)
    out = tmp_path / "samples.parquet"
    threads = torch.get_num_threads()
    try:
        cli_main(["sample", "--checkpoint-path", str(model_dir), "--dataset-name", str(data), "--output-path", str(out),
                  "--num-samples", "2", "--max-new-tokens", "4", "--backend", "hf", "--subset-size", "3", "--num-threads", "1"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    frame = pd.read_parquet(out)
    assert len(frame) == 3 * 2 and frame["problem_id"].nunique() == 3
    assert "wrote 6 samples" in capsys.readouterr().out


def test_vllm_backend_without_vllm_is_a_clear_error(model_dir, problems, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sampling, "_vllm_importable", lambda: False)
    with pytest.raises(InputError, match="vllm"):
        sample_to_file(model_dir, problems, tmp_path / "v.parquet", backend="vllm", progress=False)
    assert sampling.resolve_backend("auto") == "hf"
    with pytest.raises(SystemExit) as exc:
        cli_main(["sample", "--model", str(model_dir), "--output", str(tmp_path / "v.parquet"), "--backend", "vllm"])
    assert exc.value.code == 2
    assert "vllm package is not installed" in capsys.readouterr().err
    assert not (tmp_path / "v.parquet").exists()


@pytest.mark.parametrize("content", [b"not a parquet file", None])
def test_bad_problem_file_names_it(model_dir, tmp_path, capsys, content):
    bad = tmp_path / "bad.parquet"
    if content is None:
        pd.DataFrame({"problem_id": ["a"], "prompt": ["x"]}).to_parquet(bad)  # no answer column
    else:
        bad.write_bytes(content)
    with pytest.raises(SystemExit) as exc:
        cli_main(["sample", "--model", str(model_dir), "--dataset-name", str(bad), "--output", str(tmp_path / "o.parquet"), "--backend", "hf"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(bad) in err and ("answer" in err if content is None else "not a readable parquet" in err)


def test_bad_settings_are_input_errors(model_dir, problems, tmp_path):
    for settings in (SamplingSettings(num_samples=0), SamplingSettings(top_p=0.0), SamplingSettings(temperature=-1)):
        with pytest.raises(InputError):
            sample_to_file(model_dir, problems, tmp_path / "x.parquet", settings, backend="hf", progress=False)
    with pytest.raises(InputError, match="answer"):
        sample_to_file(model_dir, problems.drop(columns="answer"), tmp_path / "x.parquet", backend="hf", progress=False)
