"""The seed guide's command blocks, run as written at tiny size: train -> sample -> Pass@k -> plot.

Once through `nsr <command>` and once through `python workflow/scripts/<guide program>.py`, with a
JSON samples file in between and the checkpoint at the guide's default place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nsr.cli import main as cli_main
from nsr.tiny import TinyModelConfig, build_tiny_model, build_tokenizer

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {"train": "main.py", "sample": "generate_samples.py", "passk": "pass_at_k.py", "plot": "plotting.py"}
MODEL_NAME = "tiny-qwen"
NUM_PROBLEMS, NUM_SAMPLES = 3, 4


@pytest.fixture(scope="module")
def start_policy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / MODEL_NAME
    tok = build_tokenizer()
    shape = TinyModelConfig(num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                            num_key_value_heads=1, max_position_embeddings=320)
    build_tiny_model(tok, shape, seed=0).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def guide_commands(model: Path) -> list[tuple[str, list[str]]]:
    """The guide's blocks with its flags; only sizes are tiny (problems, samples, completion lengths)."""
    checkpoint = f"grpo-start-ckpts/{MODEL_NAME}-nsr-2025"  # the guide's default layout, never given
    return [
        ("train", ["--mode", "nsr", "--vlm-name", str(model), "--dataset-name", "synthchart", "--seed", "2025",
                   "--subset-size", "8", "--num-epochs", "1", "--num-generations", "4", "--reward-threshold", "0.5",
                   "--lambda-psr", "0.1", "--max-completion-length", "16"]),
        ("sample", ["--checkpoint-path", checkpoint, "--dataset-name", "synthchart", "--output-path", "samples_nsr.json",
                    "--num-samples", str(NUM_SAMPLES), "--subset-size", str(NUM_PROBLEMS), "--max-new-tokens", "8"]),
        ("passk", ["--samples-path", "samples_nsr.json", "--output-path", "results_nsr.json", "--method-name", "NSR"]),
        ("plot", ["--results", "results_nsr.json", "--labels", "NSR", "--output", "comparison.png"]),
    ]


def check_outputs(workdir: Path, printed: str) -> None:
    checkpoint = workdir / "grpo-start-ckpts" / f"{MODEL_NAME}-nsr-2025"
    assert (checkpoint / "config.json").is_file() and (checkpoint / "train_log.csv").is_file()
    records = json.loads((workdir / "samples_nsr.json").read_text())  # the guide's samples JSON
    assert isinstance(records, list) and len(records) == NUM_PROBLEMS * NUM_SAMPLES
    assert {"problem_id", "sample_idx", "completion", "answer", "reward", "correct"} <= set(records[0])
    result = json.loads((workdir / "results_nsr.json").read_text())
    assert result["method"] == "NSR" and result["n"] == NUM_SAMPLES
    assert result["pass_at_k"]["1"] == pytest.approx(sum(r["correct"] for r in records) / len(records))
    block = printed[printed.index("Pass@k Results:\n"):].splitlines()[1:4]  # the guide's printout
    assert [line.split(":")[0] for line in block] == ["  Pass@1", "  Pass@2", "  Pass@4"]
    assert block[0] == f"  Pass@1: {result['pass_at_k']['1']:.2%}"
    assert (workdir / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(workdir / "comparison.csv")
    assert set(table["method"]) == {"NSR"}


def test_guide_chain_through_nsr(start_policy, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for command, args in guide_commands(start_policy):
        cli_main([command, *args])
    check_outputs(tmp_path, capsys.readouterr().out)


@pytest.mark.slow
def test_guide_chain_through_workflow_scripts(start_policy, tmp_path):
    """`python workflow/scripts/<program>.py` as separate processes (how a user pastes the guide)."""
    printed = ""
    for command, args in guide_commands(start_policy):
        done = subprocess.run([sys.executable, str(REPO / "workflow" / "scripts" / SCRIPTS[command]), *args],
                              cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        printed += done.stdout
    check_outputs(tmp_path, printed)
