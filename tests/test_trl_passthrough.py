"""The TRL passthrough (`nsr train --trl KEY=VALUE`, `train.trl` in a study config): fields reach the
trainer's GRPOConfig and change what it does; mistakes stop before anything is loaded."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from nsr.cli import main as cli_main
from nsr.tiny import TinyModelConfig, build_tiny_model, build_tokenizer

SHAPE = TinyModelConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=2,
                        num_key_value_heads=1, max_position_embeddings=64)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny model folder and 8 training problems."""
    root = tmp_path_factory.mktemp("trl")
    tok = build_tokenizer()
    build_tiny_model(tok, SHAPE, seed=0).save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    pd.DataFrame({"problem_id": [f"p{i}" for i in range(8)], "prompt": [f"A={i} B={9 - i}|max?" for i in range(8)],
                  "answer": ["A" if i > 4 else "B" for i in range(8)]}).to_parquet(root / "train.parquet")
    return root


def train(root, out, *extra):
    cli_main(["train", "--mode", "w-reinforce", "--model", str(root / "base"), "--dataset-name",
              str(root / "train.parquet"), "--output-dir", str(out), "--num-generations", "2", "--prompts-per-step", "2",
              "--max-completion-length", "4", "--learning-rate", "1e-3", "--num-threads", "1", *extra])


def test_trl_fields_reach_the_saved_arguments_and_set_steps_per_generation(inputs, tmp_path, monkeypatch):
    import nsr.trainer

    generations = []
    real = nsr.trainer.NSRTrainer._generate_and_score_completions

    def counted(self, batch):
        generations.append((self.state.global_step, len(batch)))
        return real(self, batch)

    monkeypatch.setattr(nsr.trainer.NSRTrainer, "_generate_and_score_completions", counted)
    out = tmp_path / "out"
    train(inputs, out, "--max-steps", "4", "--trl", "steps_per_generation=2", "--trl", "epsilon=0.3")
    saved = torch.load(out / "training_args.bin", weights_only=False)
    assert (saved.steps_per_generation, saved.epsilon, saved.generation_batch_size) == (2, 0.3, 8)
    # 4 optimizer steps, one generation of 2 steps' prompts (2 prompts x 2 generations each) every 2 steps
    assert generations == [(0, 8), (2, 8)]
    assert len(pd.read_csv(out / "train_log.csv")) == 4


def test_default_run_generates_every_step(inputs, tmp_path, monkeypatch):
    """The control of the test above: without --trl one generation per optimizer step."""
    import nsr.trainer

    generations = []
    real = nsr.trainer.NSRTrainer._generate_and_score_completions
    monkeypatch.setattr(nsr.trainer.NSRTrainer, "_generate_and_score_completions",
                        lambda self, batch: generations.append(self.state.global_step) or real(self, batch))
    train(inputs, tmp_path / "out", "--max-steps", "2")
    saved = torch.load(tmp_path / "out" / "training_args.bin", weights_only=False)
    assert (saved.steps_per_generation, saved.epsilon, saved.report_to) == (1, 0.2, [])
    assert generations == [0, 1]


def test_tensorboard_event_file_holds_loss_and_reward(inputs, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "out"
    train(inputs, out, "--max-steps", "3", "--trl", "report_to=[tensorboard]")
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1, list(out.iterdir())
    reader = EventAccumulator(str(events[0]))
    reader.Reload()
    scalars = reader.Tags()["scalars"]
    assert {"train/loss", "train/reward"} <= set(scalars), scalars
    log = pd.read_csv(out / "train_log.csv")
    assert [e.step for e in reader.Scalars("train/loss")] == [1, 2, 3]
    assert [e.value for e in reader.Scalars("train/reward")] == pytest.approx(log["reward_mean"].tolist())
    assert [e.value for e in reader.Scalars("train/loss")] == pytest.approx(log["loss"].tolist(), abs=1e-6)


CLI_MISTAKES = {
    "unknown field": (["--trl", "epsilom=0.3"], "--trl epsilom: not a field of TRL's GRPOConfig (did you mean epsilon?)"),
    "project field": (["--trl", "learning_rate=0.1"], "--trl learning_rate: set by this project; use --learning-rate instead"),
    "bad type": (["--trl", "steps_per_generation=two"],
                 "--trl steps_per_generation: must be int | None (GRPOConfig's type), got 'two'"),
    "no KEY=VALUE": (["--trl", "epsilon"], "--trl epsilon: expected KEY=VALUE (a GRPOConfig field and a YAML value)"),
    "rejected by GRPOConfig": (["--trl", "steps_per_generation=2", "--trl", "generation_batch_size=8"],
                               "--trl: TRL's GRPOConfig rejects these fields: 'generation_batch_size' and "
                               "'steps_per_generation' can not be both configured at the same time"),
}


if importlib.util.find_spec("wandb") is None:
    CLI_MISTAKES["logger not installed"] = (["--trl", "report_to=[tensorboard, wandb]"],
                                            "--trl report_to=wandb: wandb is not installed here (pip install wandb)")


@pytest.mark.parametrize("case", list(CLI_MISTAKES))
def test_cli_trl_mistake_is_one_line_naming_the_field(inputs, tmp_path, capsys, case):
    extra, message = CLI_MISTAKES[case]
    with pytest.raises(SystemExit) as stop:
        train(inputs, tmp_path / "o", "--max-steps", "1", *extra)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err == f"nsr train: error: {message}\n", err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.checkpoints").exists()


def test_use_vllm_without_vllm_stops_in_seconds(inputs, tmp_path):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "nsr", "train", "--mode", "nsr", "--model", str(inputs / "base"), "--dataset-name",
         str(inputs / "train.parquet"), "--output-dir", str(tmp_path / "o"), "--trl", "use_vllm=true"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    elapsed = time.monotonic() - start
    assert result.returncode == 2 and result.stderr == (
        "nsr train: error: --trl use_vllm=true: vllm is not importable here (TRL's vLLM rollouts need it on a GPU "
        "machine: pip install vllm); leave use_vllm off to generate with transformers\n"), result.stderr
    assert elapsed < 10, elapsed  # before torch, data or model are loaded
    assert "torch" not in result.stdout and not (tmp_path / "o.checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode, batch_filter", [("w-reinforce", "mask"), ("nsr", "subset")])
def test_resume_at_a_generation_boundary_equals_an_uninterrupted_run(inputs, tmp_path, mode, batch_filter):
    """steps_per_generation 2, checkpoints every 2 steps (generation boundaries): kill -9 after checkpoint 4,
    resume: the same weights as an uninterrupted run (what config/README.md promises for the passthrough),
    also when excluded samples leave the batch (batch_filter subset)."""
    from test_trainer import KILL_AT_CHECKPOINT

    script = tmp_path / "kill_at_checkpoint.py"
    script.write_text(KILL_AT_CHECKPOINT)

    def run(out, kill_at=0, resume=False):
        args = ["train", "--mode", mode, "--batch-filter", batch_filter, "--model", str(inputs / "base"),
                "--dataset-name", str(inputs / "train.parquet"), "--num-generations", "2", "--prompts-per-step", "2",
                "--max-completion-length", "4", "--learning-rate", "1e-2", "--num-threads", "1", "--max-steps", "6",
                "--checkpoint-every", "2", "--trl", "steps_per_generation=2", "--output-dir", str(out),
                *(["--resume"] if resume else [])]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "KILL_AT": str(kill_at), "CUDA_VISIBLE_DEVICES": ""}
        return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True,
                              timeout=300)

    reference = run(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    killed = run(tmp_path / "run", kill_at=4)
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = run(tmp_path / "run", resume=True)
    assert resumed.returncode == 0 and "checkpoint-4" in resumed.stdout, resumed.stderr[-3000:]
    assert "note: --checkpoint-every" not in resumed.stdout
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == \
        (tmp_path / "reference" / "model.safetensors").read_bytes()
    log, reference_log = (pd.read_csv(tmp_path / d / "train_log.csv").drop(columns="seconds") for d in ("run", "reference"))
    pd.testing.assert_frame_equal(log, reference_log)
    # 2 prompts x 2 per micro-batch, 2 per generation: mini-batches of 4 samples under subset
    per_batch = log.groupby("rollout_batch").agg(steps=("optimizer_step", "sum"), kept=("rollout_kept", "first"))
    expected = -(-per_batch["kept"] // 4) if batch_filter == "subset" else 2
    assert (per_batch["steps"] == expected).all() and len(per_batch) == 3, per_batch
