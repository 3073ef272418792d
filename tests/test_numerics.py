"""nsr.numerics: every `nsr` command computes on one CPU code path, so checkpoints do not depend on
the outer environment's kernel choice or the thread count (benchmarks/numerics_pinning.py measures
the default-size model: unpinned, ATEN_CPU_CAPABILITY=default / avx2 and MKL_CBWR=COMPATIBLE give
three different checkpoints; pinned, one)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nsr import cli
from nsr.io import InputError
from nsr.numerics import ENV_KEY, PINS, pin_cpu_numerics

OUTER = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}


def test_pin_overrides_the_outer_environment_and_native_leaves_it():
    env = dict(OUTER)
    assert pin_cpu_numerics(env) == "avx2"  # the default level
    assert env == {**PINS["avx2"], ENV_KEY: "avx2"}
    env = {**OUTER, ENV_KEY: " Default "}
    assert pin_cpu_numerics(env) == "default" and env["ATEN_CPU_CAPABILITY"] == "default"
    env = {**OUTER, ENV_KEY: "native"}
    assert pin_cpu_numerics(env) == "native" and env == {**OUTER, ENV_KEY: "native"}
    with pytest.raises(InputError, match=f"{ENV_KEY}='avx3'.*numerics.cpu_capability"):
        pin_cpu_numerics({ENV_KEY: "avx3"})


def test_every_command_names_a_bad_level_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv(ENV_KEY, "fast")
    with pytest.raises(SystemExit) as stop:
        cli.main(["passk", "--help"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(f"nsr passk: error: {ENV_KEY}='fast'") and err.count("\n") == 1


def _train(root: Path, out: Path, threads: int, env: dict) -> str:
    """`python -m nsr train` (a fresh process: the variables act before torch's first kernel)."""
    args = ["train", "--model", str(root / "base"), "--dataset-name", str(root / "train.parquet"), "--mode", "nsr",
            "--max-steps", "3", "--prompts-per-step", "4", "--num-generations", "4", "--max-completion-length", "6",
            "--learning-rate", "1e-2", "--seed", "3", "--num-threads", str(threads), "--output-dir", str(out)]
    keep = {k: v for k, v in os.environ.items() if k not in (*OUTER, ENV_KEY)}
    done = subprocess.run([sys.executable, "-m", "nsr", *args], capture_output=True, text=True, timeout=300,
                          env={**keep, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
def test_pinned_checkpoints_are_identical_across_outer_kernels_and_threads(tmp_path):
    """Pinned (the default): outer ATen / MKL / oneDNN choices and 1 vs 2 threads give the same bytes.
    Unpinned, ATEN_CPU_CAPABILITY=default gives other bytes on a CPU with AVX2: the pin is what holds."""
    from nsr.data import load_problems
    from nsr.io import write_parquet
    from nsr.tiny import TinyModelConfig, build_tiny_model, build_tokenizer

    tok = build_tokenizer()
    shape = TinyModelConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=2,
                            num_key_value_heads=1, max_position_embeddings=64)
    build_tiny_model(tok, shape, seed=0).save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    write_parquet(tmp_path / "train.parquet", load_problems("synthchart", split="train", num=16, seed=1))

    pinned = _train(tmp_path, tmp_path / "a", 1, OUTER)
    assert _train(tmp_path, tmp_path / "b", 2, {}) == pinned
    if " avx2 " in Path("/proc/cpuinfo").read_text().replace("\n", " "):
        assert _train(tmp_path, tmp_path / "c", 1, {**OUTER, ENV_KEY: "native"}) != pinned


def test_config_key_takes_the_levels_the_commands_know():
    from nsr.numerics import LEVELS
    from nsr.study_config import load_schema

    schema = load_schema()
    assert set(schema["properties"]["numerics"]["properties"]["cpu_capability"]["enum"]) == set(LEVELS)
