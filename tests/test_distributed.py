"""Multi-process training on CPU through `accelerate launch` (plain DDP and DeepSpeed ZeRO-3, gloo).

The 2-process runs check what a silently broken launch gets wrong: each rank running alone
(num_processes=1, the cause of the old ZeRO-3 batch-size error; see docs/distributed.md) still
writes a model, but its train_log counts only its own completions, not both ranks' gathered ones.
They train NSR under batch_filter subset with rewards rigged per rank: in the first rollout batch
rank 0's samples are all right (nothing kept there) and rank 1's all wrong, in the second all are
right; both ranks must take the same optimizer steps (2, then none) and neither may hang. The
group_filter run (DDP) rigs them so that only rank 0's groups survive: both ranks must take the same
decisions on the gathered rewards (the same generate calls, the same kept groups).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from nsr.io import write_parquet

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "config" / "accelerate"
PROMPTS, GENERATIONS, PROCESSES = 2, 4, 2
STEPS_PER_GENERATION = 2
ROLLOUT = PROMPTS * GENERATIONS * PROCESSES * STEPS_PER_GENERATION  # samples per rollout batch, all ranks

# `nsr train` with the reward rigged per rank and rollout batch; each rank writes its optimizer steps
# to RIGGED_STEPS_DIR/rank<R>.steps.
RIGGED = """
import json, os, sys
import nsr.train_cli
import nsr.trainer
from nsr.cli import main

RANK, calls, groups = int(os.environ.get("RANK", "0")), [], []
STEPS_DIR = os.environ["RIGGED_STEPS_DIR"]

def rigged(completions, **_):
    calls.append(1)
    if os.environ.get("RIGGED_GROUPS"):  # wrong: rank 0's first two batches, rank 1's first group of its third
        return [float(not ((RANK == 0 and len(calls) <= 2) or (RANK == 1 and len(calls) == 3 and i < 4)))
                for i in range(len(completions))]
    right = len(calls) > 1 or RANK == 0
    return [float(right)] * len(completions)

generate = nsr.trainer.NSRTrainer._generate_and_score_completions

def recorded(self, inputs):  # each rank's own view of the groups it generated and kept
    out = generate(self, inputs)
    groups.append([int(count) for count in self._group_counts[:2]])
    return out

nsr.trainer.NSRTrainer._generate_and_score_completions = recorded

nsr.train_cli.reward_correctness = rigged
train = nsr.trainer.NSRTrainer.train

def counted(self, *args, **kwargs):
    out = train(self, *args, **kwargs)
    engine = self.model_wrapped
    if hasattr(engine, "global_steps"):  # DeepSpeed: the engine counts the optimizer steps it took
        steps = engine.global_steps
    else:
        steps = max((int(s["step"]) for s in self.optimizer.state_dict()["state"].values()), default=0)
    # A file per rank: the ranks share stdout, where their lines can interleave mid-line.
    with open(os.path.join(STEPS_DIR, f"rank{RANK}.steps"), "w") as f:
        f.write(str(steps))
    with open(os.path.join(STEPS_DIR, f"rank{RANK}.groups"), "w") as f:
        json.dump(groups, f)
    return out

nsr.trainer.NSRTrainer.train = counted
main(sys.argv[1:])
"""


def _launch_args(config: str) -> argparse.Namespace:
    """The config as `accelerate launch` resolves and validates it (no process is started)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / config), "-m", "nsr", "train"])
    return _validate_launch_command(args)[0]


@pytest.mark.parametrize(
    "config, launcher, processes, precision",
    [
        ("single_process.yaml", "simple", 1, "no"),
        ("multi_gpu.yaml", "multi_gpu", 2, "bf16"),
        ("deepspeed_zero3.yaml", "deepspeed", 2, "bf16"),
        ("deepspeed_zero3_offload.yaml", "deepspeed", 2, "fp16"),
        ("deepspeed_zero3_cpu.yaml", "deepspeed", 2, "no"),
    ],
)
def test_accelerate_configs_pass_accelerate_validation(config, launcher, processes, precision):
    args = _launch_args(config)
    assert args.num_processes == processes and args.mixed_precision == precision
    assert (args.use_deepspeed, args.multi_gpu) == (launcher == "deepspeed", launcher == "multi_gpu")
    if launcher == "deepspeed":
        assert args.zero_stage == 3 and args.zero3_init_flag
        # Without it ZeRO-3 saves only empty parameter shards and the checkpoint does not load.
        assert args.zero3_save_16bit_model
        offload = "cpu" if "offload" in config else "none"
        assert args.offload_param_device == args.offload_optimizer_device == offload


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from nsr.data import load_problems
    from nsr.tiny import TinyModelConfig, build_tiny_model, build_tokenizer

    root = tmp_path_factory.mktemp("distributed")
    tokenizer = build_tokenizer()
    model = build_tiny_model(tokenizer, TinyModelConfig(
        num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1), seed=0)
    model.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    write_parquet(root / "train.parquet", load_problems("synthchart", split="train", num=32, seed=1))
    return root


def _launch(inputs: Path, config: str, name: str, *flags: str, **env_extra: str):
    """`nsr train` of the rigged script on 2 CPU processes: (output folder, the finished process, the folder of
    each rank's optimizer steps and groups)."""
    out = inputs / name
    # Two CPU processes also where a GPU is visible: with CUDA hidden, torch, accelerate and DeepSpeed
    # take the CPU path (gloo; NSRConfig sets use_cpu for DDP and the gloo backend for ZeRO-3), as on
    # a machine without one. Visible, both ranks would pick cuda:0 and NCCL refuses ("Duplicate GPU").
    # (accelerate's --cpu is no way out: it bypasses the DeepSpeed launcher this test is about.)
    steps_dir = inputs / f"{name}.steps"
    steps_dir.mkdir(exist_ok=True)
    for stale in steps_dir.glob("rank*.*"):
        stale.unlink()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "DS_ACCELERATOR": "cpu", "RIGGED_STEPS_DIR": str(steps_dir),
           "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR", str(ROOT / ".cache" / "torch_extensions")),
           **env_extra}
    script = inputs / "rigged_train.py"
    script.write_text(RIGGED)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / config),
           "--num_processes", str(PROCESSES), "--main_process_port", "0", str(script),
           "train", "--model", str(inputs / "base"), "--dataset-name", str(inputs / "train.parquet"),
           "--seed", "1", "--mode", "nsr", "--max-steps", str(2 * STEPS_PER_GENERATION),
           "--trl", f"steps_per_generation={STEPS_PER_GENERATION}", "--num-generations", str(GENERATIONS),
           "--prompts-per-step", str(PROMPTS), "--max-completion-length", "8", "--learning-rate", "1e-3",
           "--output-dir", str(out), *flags]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    (inputs / f"{name}.stderr").write_text(proc.stderr)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    # One final model written by the main process only, not once per independent rank.
    assert proc.stdout.count(f"wrote {out}") == 1, proc.stdout[-3000:]
    return out, proc, steps_dir


def _train(inputs: Path, config: str, name: str) -> Path:
    out, proc, steps_dir = _launch(inputs, config, name, "--batch-filter", "subset")
    # Rank 1 keeps all its samples of the first rollout batch (2 mini-batches), rank 0 none: both take 2
    # steps; the second rollout batch keeps nothing anywhere: no step on either rank.
    steps = {path.name: int(path.read_text()) for path in sorted(steps_dir.glob("rank*.steps"))}
    assert steps == {f"rank{rank}.steps": 2 for rank in range(PROCESSES)}, proc.stdout[-3000:]
    return out


def _check_run(inputs: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM

    log = pd.read_csv(out / "train_log.csv")
    assert list(log["step"]) == [1, 2, 3, 4]
    # nsr keeps exactly the incorrect samples of the batch gathered over all ranks; a rank running
    # alone would account for only its own completions (rank 0: all right, nothing kept).
    generated = log.dropna(subset=["kept_samples"])
    assert list(generated["kept_samples"]) == [ROLLOUT / 2, 0], log.to_string()
    assert (generated["kept_samples"] + generated["frac_correct"] * ROLLOUT).round(6).eq(ROLLOUT).all()
    assert list(log["rollout_batch"]) == [0, 0, 1, 1] and list(log["optimizer_step"]) == [1, 1, 0, 0]
    base = AutoModelForCausalLM.from_pretrained(inputs / "base").state_dict()
    trained = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert trained.keys() == base.keys()
    assert all(trained[k].shape == base[k].shape for k in base)  # full weights, not ZeRO-3 shards
    assert any(not torch.equal(trained[k], base[k]) for k in base), "no update reached the saved model"


@pytest.mark.slow
def test_ddp_ranks_agree_on_the_kept_groups(inputs):
    """NSR on unsolved groups, refill up to 3 generation batches of 8 groups (4 per rank). Rollout batch 0: rank 0's
    4 groups are unsolved in the first and second batch (the second's find rank 0 full: dropped), rank 1's first
    group in the third: 5 of 8 kept at the cap, rank 1 fills its rows with stand-ins. Rollout batch 1: nothing
    unsolved, a zero loss. Each rank records the same counts, the log has them, and the model moved."""
    out, proc, steps_dir = _launch(inputs, "multi_gpu.yaml", "ddp-groups", "--batch-filter", "mask", "--group-filter",
                                   "unsolved", "--group-filter-max-batches", "3", RIGGED_GROUPS="1")
    groups = {path.name: json.loads(path.read_text()) for path in sorted(steps_dir.glob("rank*.groups"))}
    assert groups == {f"rank{rank}.groups": [[24, 5], [24, 0]] for rank in range(PROCESSES)}, proc.stdout[-3000:]
    steps = {path.name: int(path.read_text()) for path in sorted(steps_dir.glob("rank*.steps"))}
    assert steps == {f"rank{rank}.steps": 2 * STEPS_PER_GENERATION for rank in range(PROCESSES)}
    for step, kept, outcome in ((1, 5, "training on those"), (3, 0, "a zero loss")):
        assert (f"group_filter unsolved: step {step} kept {kept} of 8 groups in 3 generation batch(es) "
                f"(group_filter_max_batches 3): {outcome}") in proc.stdout, proc.stdout[-3000:]
    log = pd.read_csv(out / "train_log.csv")
    assert list(log["groups_generated"]) == [24] * 4 and list(log["groups_kept"]) == [5, 5, 0, 0]
    assert list(log["rollout_kept"]) == [20, 20, 0, 0] and list(log["loss"])[2:] == [0.0, 0.0]
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(inputs / "base").state_dict()
    trained = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert any(not torch.equal(trained[k], base[k]) for k in base), "no update reached the saved model"
