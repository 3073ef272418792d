"""The vision-language path on CPU: a tiny Qwen2.5-VL built locally, trained, sampled, evaluated."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from nsr.cli import main as cli_main
from nsr.io import InputError
from nsr.sampling import SamplingSettings, decoding, encode_problems, sample_to_file, shared_prefix_sample
from nsr.tasks.synthchart import load
from nsr.tiny import TinyModelConfig, build_tiny_model, build_tokenizer
from nsr.trainer import HeldOutEvalCallback
from nsr.vlm import ImageOnlyQwenVLProcessor, chat_with_image, is_vlm_folder, load_policy, load_processing, save_tiny_vlm

REPO = Path(__file__).resolve().parents[1]


def _diversify(model, scale=0.3):
    """Random weights at the default 0.02 scale make greedy repeat one token; a larger scale varies it."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
    return model.eval()


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory):
    return save_tiny_vlm(tmp_path_factory.mktemp("vlm") / "model", seed=0)


@pytest.fixture(scope="module")
def vlm(vlm_dir):
    return _diversify(load_policy(vlm_dir)), load_processing(vlm_dir)


@pytest.fixture(scope="module")
def image_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    pd.DataFrame(load("train", 6, 0, render="image")).to_parquet(root / "train.parquet")
    pd.DataFrame(load("test", 3, 0, render="image")).to_parquet(root / "test.parquet")
    return root


def test_tiny_vlm_folder_loads_with_auto_classes(vlm_dir):
    from transformers import Qwen2_5_VLForConditionalGeneration

    assert is_vlm_folder(vlm_dir) and (vlm_dir / "processor_config.json").exists()
    model, processor = load_policy(vlm_dir), load_processing(vlm_dir)
    assert isinstance(model, Qwen2_5_VLForConditionalGeneration) and isinstance(processor, ImageOnlyQwenVLProcessor)
    assert model.config.text_config.num_hidden_layers == 2 and model.config.vision_config.depth == 2
    assert processor.image_token_id == model.config.image_token_id
    # The image placeholder expands to one <|image_pad|> per merged patch (2x2 merge).
    row = load("test", 1, 0, render="image")[0]
    text = processor.apply_chat_template(chat_with_image(row["prompt"]), add_generation_prompt=True, tokenize=False)
    enc = processor(text=[text], images=[sampling_image(row)], return_tensors="pt")
    assert (enc["input_ids"] == processor.image_token_id).sum() == enc["image_grid_thw"].prod() // 4
    assert processor.tokenizer.decode(enc["input_ids"][0], skip_special_tokens=True) == row["prompt"]
    # A text-only folder still gets a tokenizer and a causal LM.
    assert not is_vlm_folder(REPO)


def sampling_image(row):
    from nsr.vlm import to_pil

    return to_pil(row["image"])


def test_chat_with_image_is_the_one_conversion():
    image_part, text = {"type": "image"}, {"type": "text", "text": "q?"}
    assert chat_with_image("q?") == [{"role": "user", "content": [image_part, text]}]
    assert chat_with_image([{"role": "user", "content": "q?"}]) == [{"role": "user", "content": [image_part, text]}]
    already = [{"role": "user", "content": [image_part, text]}]
    assert chat_with_image(already) == already
    with pytest.raises(InputError, match="user message"):
        chat_with_image([{"role": "system", "content": "x"}])


def _generate_each(model, ids, extra, max_new_tokens, eos, pad):
    """Plain model.generate greedy, one prompt (and its image) at a time."""
    out, offset = [], 0
    for i, prompt in enumerate(ids):
        grid = extra["image_grid_thw"][i : i + 1]
        pixels = extra["pixel_values"][offset : offset + int(grid.prod())]
        offset += int(grid.prod())
        input_ids = torch.tensor([prompt])
        full = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), pixel_values=pixels,
                              image_grid_thw=grid, mm_token_type_ids=(input_ids == model.config.image_token_id).int(),
                              do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad)
        tokens = full[0, len(prompt) :].tolist()
        out.append(tokens[: tokens.index(eos)] if eos in tokens else tokens)
    return out


def test_greedy_shared_cache_matches_generate_for_image_prompts(vlm, monkeypatch):
    model, processor = vlm
    rows = load("test", 3, 0, render="image")
    prompts = [r["prompt"] for r in rows]
    # different lengths: left padding in the shared call
    prompts[1] += " Answer with one letter only."
    prompts[2] += " Please answer with a single letter, nothing else."
    ids, extra = encode_problems(processor, model, prompts, [r["image"] for r in rows])
    assert len({len(i) for i in ids}) == 3
    pad = processor.tokenizer.pad_token_id
    free = _generate_each(model, ids[:1], extra, 10, None, pad)[0]
    eos = free[5]  # a token greedy emits mid-way: rows stop at different steps
    expected = _generate_each(model, ids, extra, 10, eos, pad)
    assert len({len(e) for e in expected}) > 1
    shared = shared_prefix_sample(model, ids, 2, max_new_tokens=10, eos_token_id=eos, pad_token_id=pad,
                                  temperature=0, extra_inputs=extra)
    assert shared == [[e, e] for e in expected]
    # The image makes decode positions lag the token count (rope delta < 0); ignoring it changes the output.
    monkeypatch.setattr(decoding, "_decode_positions", lambda next_pos, deltas: next_pos[:, None])
    wrong = shared_prefix_sample(model, ids, 2, max_new_tokens=10, eos_token_id=eos, pad_token_id=pad,
                                 temperature=0, extra_inputs=extra)
    assert wrong != shared


def test_sample_to_file_with_images(vlm_dir, image_data, tmp_path):
    problems = pd.read_parquet(image_data / "test.parquet")
    settings = SamplingSettings(num_samples=3, max_new_tokens=4, seed=1)
    kw = dict(backend="hf", progress=False, num_threads=1)
    frame = sample_to_file(vlm_dir, problems, tmp_path / "a.parquet", settings, problems_per_call=2, **kw)
    assert len(frame) == 9 and list(frame["problem_id"].unique()) == list(problems["problem_id"])
    assert frame["completion"].str.len().gt(0).any()
    # A problem's samples do not depend on which problems share its call.
    again = sample_to_file(vlm_dir, problems, tmp_path / "b.parquet", settings, problems_per_call=1, **kw)
    pd.testing.assert_frame_equal(frame, again)
    # Image problems on a text model folder: one clear error before loading anything.
    text_dir = tmp_path / "text"
    tok = build_tokenizer()
    build_tiny_model(tok, TinyModelConfig(num_hidden_layers=1, hidden_size=32, intermediate_size=64)).save_pretrained(text_dir)
    tok.save_pretrained(text_dir)
    with pytest.raises(InputError, match="processor config"):
        sample_to_file(text_dir, problems, tmp_path / "c.parquet", settings, **kw)


def read_log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("mode", ["grpo", "psr", "nsr", "w-reinforce"])
def test_cli_train_vlm_all_modes(vlm_dir, image_data, tmp_path, mode):
    out = tmp_path / "out"
    cli_main(["train", "--mode", mode, "--model", str(vlm_dir), "--dataset-name", str(image_data / "train.parquet"),
              "--output-dir", str(out), "--num-generations", "2", "--prompts-per-step", "2", "--max-completion-length", "3",
              "--max-steps", "2", "--learning-rate", "1e-3", "--num-threads", "1", "--seed", "3"])
    assert isinstance(load_processing(out), ImageOnlyQwenVLProcessor)
    before, after = load_policy(vlm_dir), load_policy(out)
    rows = read_log(out / "train_log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert all(float(r["entropy"]) > 0 and 0 <= float(r["frac_correct"]) <= 1 for r in rows)
    assert "eval_entropy" not in rows[0]  # eval columns only when evaluation is on
    moved = any(not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters()))
    kept = sum(float(r["kept_samples"]) for r in rows)
    # Random-init policy: every sample is wrong, so grpo has zero advantages and psr keeps nothing.
    assert moved == (mode in ("nsr", "w-reinforce")) and (kept == 0) == (mode == "psr")


def test_eval_entropies_match_a_teacher_forced_forward():
    tok = build_tokenizer()
    model = _diversify(build_tiny_model(tok, TinyModelConfig(num_hidden_layers=1, hidden_size=32, intermediate_size=64)))
    ids = [tok("A=1 B=2|max?")["input_ids"], tok("x")["input_ids"]]
    stops = list(range(40, 90))
    tokens, entropies = shared_prefix_sample(model, ids, 3, max_new_tokens=6, eos_token_id=stops, pad_token_id=tok.pad_token_id,
                                             temperature=0.7, seeds=[1, 2], return_entropies=True)
    for prompt, rows, ents in zip(ids, tokens, entropies):
        for completion, ent in zip(rows, ents):
            assert len(ent) == min(len(completion) + 1, 6)  # the EOS position counts, as in TRL's entropy
            with torch.no_grad():
                logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1 :] / 0.7
            logp = logits[: len(ent)].log_softmax(-1)
            torch.testing.assert_close(torch.tensor(ent), -(logp.exp() * logp).sum(-1), atol=1e-4, rtol=1e-4)


def test_held_out_eval_accuracy_and_entropy(vlm):
    model, processor = vlm
    problems = pd.DataFrame(load("test", 2, 0, render="image"))
    callback = HeldOutEvalCallback(problems, processor, 1, max_new_tokens=3, num_samples=2, seed=0)
    ids, extra = encode_problems(processor, model, list(problems["prompt"]), list(problems["image"]))
    greedy = shared_prefix_sample(model, ids, 1, max_new_tokens=3, eos_token_id=processor.tokenizer.eos_token_id,
                                  pad_token_id=processor.tokenizer.pad_token_id, temperature=0, extra_inputs=extra)
    # Make the first problem's answer the model's own greedy output: accuracy is then exactly 1/2.
    first = processor.tokenizer.decode(greedy[0][0], skip_special_tokens=True)
    problems.loc[0, "answer"] = first
    problems.loc[1, "answer"] = "this is never the output"
    callback.problems = problems
    model.train()
    result = callback.evaluate(model)
    assert model.training  # the policy's mode is restored
    assert result["eval_accuracy"] == 0.5
    assert 0 < result["eval_entropy"] <= math.log(model.config.text_config.vocab_size) + 1e-4
    assert callback.evaluate(model) == result  # fixed seeds: same policy, same numbers


def test_cli_eval_columns_in_train_log(vlm_dir, image_data, tmp_path):
    out = tmp_path / "out"
    cli_main(["train", "--mode", "nsr", "--model", str(vlm_dir), "--dataset-name", str(image_data / "train.parquet"),
              "--output-dir", str(out), "--num-generations", "2", "--prompts-per-step", "2", "--max-completion-length", "3",
              "--max-steps", "3", "--num-threads", "1", "--eval-dataset", str(image_data / "test.parquet"),
              "--eval-every", "2", "--eval-size", "2", "--eval-samples", "2"])
    rows = read_log(out / "train_log.csv")
    assert list(rows[0])[-6:] == ["eval_entropy", "eval_accuracy", "eval_pass_at_1", "eval_pass_at_k", "eval_k",
                                  "eval_malformed"]
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3]  # step 0: the base, evaluated before any update
    assert [r["eval_entropy"] == "" for r in rows] == [False, True, False, True]
    vocab = load_policy(vlm_dir).config.text_config.vocab_size
    for row in rows[::2]:
        assert 0 < float(row["eval_entropy"]) <= math.log(vocab) + 1e-4
        assert float(row["eval_accuracy"]) in (0.0, 0.5, 1.0) and row["eval_k"] == "2"
    assert pd.read_parquet(out / "eval_samples.parquet")["step"].unique().tolist() == [0, 2]


def test_cli_eval_flags_are_validated(vlm_dir, image_data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--mode", "nsr", "--model", str(vlm_dir), "--dataset-name", str(image_data / "train.parquet"),
                  "--output-dir", str(tmp_path / "o"), "--eval-every", "2"])
    assert "--eval-every needs --eval-dataset" in capsys.readouterr().err


# --- the real DAG with a tiny VLM -----------------------------------------------------------------


def _base_copies_vlm_folders() -> bool:
    """nsr base must load a VLM folder through nsr.vlm (AutoProcessor alone cannot resolve its processor)."""
    return "nsr.vlm" in (REPO / "src" / "nsr" / "base.py").read_text()


@pytest.mark.slow
@pytest.mark.xfail(not _base_copies_vlm_folders(), strict=True,
                   reason="nsr base (src/nsr/base.py load_pretrained) calls AutoProcessor without importing nsr.vlm: "
                          "the tiny VLM's processor class does not resolve, AutoProcessor falls back to the tokenizer "
                          "and results/models/base loses its processor_config.json, so train/sample refuse the image "
                          "problems. Fix: load with nsr.vlm.load_processing / load_policy")
def test_tiny_vlm_study_end_to_end(vlm_dir, tmp_path):
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny_vlm.yaml").read_text())
    config["base"]["model"] = str(vlm_dir)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = ["timeout", "-s", "INT", "170", sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
           "--cores", "2", "--configfile", str(config_path), "--directory", str(tmp_path)]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    logs = "\n".join(f"== {p}\n{p.read_text()[-2000:]}" for p in sorted((tmp_path / "logs").rglob("*.log")))
    assert result.returncode == 0, result.stderr[-4000:] + logs
    results = tmp_path / "results"
    assert isinstance(load_processing(results / "models" / "base"), ImageOnlyQwenVLProcessor)
    assert "image" in pd.read_parquet(results / "data" / "test.parquet").columns
    trained = results / "models" / "nsr" / "seed1"
    assert is_vlm_folder(trained) and len(read_log(trained / "train_log.csv")) == config["train"]["max_steps"]
    n, m = config["sampling"]["num_samples"], config["data"]["test_size"]
    for method in config["methods"]:
        samples = pd.read_parquet(results / "samples" / method / "seed1.parquet")
        assert len(samples) == n * m
        assert (results / "pass_at_k" / method / "seed1.json").exists()
    assert (results / "comparison_pass_at_k.png").stat().st_size > 10_000
    assert (results / "training_curves.png").exists()
