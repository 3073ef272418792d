"""`train.trl` and a method's own `model` in a study config: checked before any job (dry run and
`nsr check-config`), handed to `nsr train`, and a checkpoint trained elsewhere compared like the base."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

from nsr.study_config import config_errors, method_settings, train_arguments
from nsr.tiny import TinyModelConfig, build_tiny_model, build_tokenizer
from test_workflow import REPO, TINY_CONFIG, job_counts, snakemake, write_config

TINY = yaml.safe_load(TINY_CONFIG.read_text())
SHAPE = TinyModelConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=2,
                        num_key_value_heads=1, max_position_embeddings=96)


def model_folder(path: Path, seed: int) -> str:
    tok = build_tokenizer()
    build_tiny_model(tok, SHAPE, seed=seed).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


# case: (edit(config), the line the dry run reports)
MISTAKES = {
    "unknown field": (lambda c: c["train"].update(trl={"epsilom": 0.3}),
                      "train.trl.epsilom: not a field of TRL's GRPOConfig (did you mean epsilon?)"),
    "project-owned field": (lambda c: c["methods"]["nsr"].update(trl={"learning_rate": 0.1}),
                            "methods.nsr.trl.learning_rate: set by this project; use the config key learning_rate "
                            "instead"),
    "owned without a key": (lambda c: c["train"].update(trl={"logging_steps": 5}),
                            "train.trl.logging_steps: set by this project; nsr train fixes it (resumable checkpoints, "
                            "one train_log.csv row per step)"),
    "bad type": (lambda c: c["train"].update(trl={"use_vllm": "yes"}),
                 "train.trl.use_vllm: must be bool (GRPOConfig's type), got 'yes'"),
    "number as YAML text": (lambda c: c["train"].update(trl={"epsilon_high": "2e-1"}),
                            "train.trl.epsilon_high: must be float | None (GRPOConfig's type), got '2e-1' (YAML reads "
                            "this as text: write it with a decimal point, e.g. 1.0e-4)"),
    "trl in extra_args": (lambda c: c["train"].update(extra_args="--trl epsilon=0.3"),
                          "train.extra_args: --trl is set by the workflow from the config key trl; set that instead"),
    "trl on an untrained method": (lambda c: c["methods"]["base"].update(trl={"epsilon": 0.3}),
                                   "methods.base.trl: objective none evaluates the base model untrained; training keys "
                                   "do not apply"),
    "missing method model": (lambda c: c["methods"]["base"].update(model="./elsewhere/ckpt"),
                             "methods.base.model: ./elsewhere/ckpt: no such model folder (a hub id looks like org/name)"),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_config_check_names_the_key(case):
    edit, message = MISTAKES[case]
    config = copy.deepcopy(TINY)
    edit(config)
    assert config_errors(config, REPO) == [message]


@pytest.mark.parametrize("case", ["unknown field", "project-owned field", "bad type"])
def test_dry_run_stops_with_one_line_naming_the_key(case, tmp_path):
    edit, message = MISTAKES[case]
    config = write_config(tmp_path, edit)
    result = snakemake("-n", "--configfile", str(config), workdir=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and f"config {config}: 1 mistake\n  {message}\n" in output, output
    assert "Job stats" not in output


def test_dry_run_check_imports_no_trl():
    """The dry run's checks read GRPOConfig's fields from TRL's source: neither TRL nor torch is imported."""
    code = ("import sys; from nsr.study_config import config_errors, load_yaml; "
            f"print(config_errors(load_yaml({str(REPO / 'config/experiments/qwen2.5-math-7b-math.yaml')!r}), "
            f"{str(REPO)!r})); print(sorted(m for m in ('trl', 'torch', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == ["[]", "[]"], result.stdout + result.stderr


def test_check_config_builds_grpo_config(tmp_path):
    """What only TRL's GRPOConfig knows (here: its divisibility rule) stops `nsr check-config`."""
    config = copy.deepcopy(TINY)
    config["methods"]["nsr"]["trl"] = {"generation_batch_size": 5}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "nsr", "check-config", str(path)], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 2 and result.stderr == (
        f"config {path}: 1 mistake\n  methods.nsr.trl: TRL's GRPOConfig rejects these fields: generation_batch_size (5) "
        "must be divisible by the global batch size (4).\n"), result.stderr


def test_trl_reaches_nsr_train_and_a_method_updates_it_field_by_field():
    config = copy.deepcopy(TINY)
    config["train"]["trl"] = {"epsilon": 0.3, "report_to": ["tensorboard"]}
    config["methods"]["nsr"]["trl"] = {"epsilon": 0.25, "steps_per_generation": 2}
    assert config_errors(config, REPO) == []
    nsr = " ".join(train_arguments(method_settings(config, "nsr"), "t.parquet"))
    psr = " ".join(train_arguments(method_settings(config, "psr"), "t.parquet"))
    assert "--trl epsilon=0.25 --trl 'report_to=[\"tensorboard\"]' --trl steps_per_generation=2" in nsr
    assert "--trl epsilon=0.3 --trl 'report_to=[\"tensorboard\"]'" in psr and "steps_per_generation" not in psr
    # an empty mapping is no mapping: the same command as before this key existed
    config["train"]["trl"] = {}
    del config["methods"]["nsr"]["trl"]
    assert train_arguments(method_settings(config, "nsr"), "t.parquet") == \
        train_arguments(method_settings(TINY, "nsr"), "t.parquet")


def test_empty_trl_builds_the_config_of_before(tmp_path):
    """With no --trl the trainer's config is field for field the one nsr train built before the passthrough."""
    from nsr.train_cli import build_parser, training_config
    from nsr.trainer import NSRConfig

    settings = method_settings(TINY, "nsr")
    args = build_parser().parse_args([*" ".join(train_arguments(settings, "t.parquet")).split(), "--model", "m",
                                      "--dataset-name", "d", "--output-dir", str(tmp_path / "o")])
    before = NSRConfig(output_dir=str(tmp_path / "o.checkpoints"), objective="nsr", lambda_psr=0.1, reward_threshold=0.5,
                       seed=42, learning_rate=1e-3, lr_scheduler_type="constant", num_train_epochs=1.0, max_steps=12,
                       num_generations=2, per_device_train_batch_size=4, max_completion_length=8, temperature=1.0,
                       beta=0.0, bf16=None, logging_steps=1, save_strategy="steps", save_steps=2, save_total_limit=1,
                       report_to="none")
    assert training_config(args, tmp_path / "o.checkpoints").to_dict() == before.to_dict()


def test_empty_trl_leaves_the_checkpoint_byte_for_byte(tmp_path):
    """A tiny training with the train rule's command of a config without `trl` and with `trl: {}`: the same
    model and training arguments, byte for byte."""
    from nsr.cli import main as cli_main
    from nsr.data import load_problems
    from nsr.io import write_parquet

    base = model_folder(tmp_path / "base", seed=0)
    write_parquet(tmp_path / "train.parquet", load_problems("synthchart", split="train", num=8, seed=1))
    saved = {}
    for name, trl in (("without", None), ("empty", {})):
        config = copy.deepcopy(TINY)
        config["train"].update(max_steps=2, eval_every=0)
        if trl is not None:
            config["train"]["trl"] = trl
        command = " ".join(train_arguments(method_settings(config, "w-reinforce"), "t.parquet")).split()
        out = tmp_path / "out"  # the same folder: training_args.bin holds the output path
        cli_main(["train", "--model", base, "--dataset-name", str(tmp_path / "train.parquet"), "--seed", "1",
                  "--num-threads", "1", "--output-dir", str(out), *command])
        saved[name] = {f: (out / f).read_bytes() for f in ("model.safetensors", "training_args.bin")}
        out.rename(tmp_path / name)
    assert saved["without"] == saved["empty"]


# --- checkpoints trained elsewhere as methods ------------------------------------------------

def external_study(tmp_path: Path) -> tuple[Path, str, str]:
    """The tiny study with the base and an 'elsewhere' checkpoint as local folders: `elsewhere` is
    evaluated as is, `nsr-elsewhere` trains from it (learning rate 1e-30: its weights stay the folder's)."""
    base = model_folder(tmp_path / "base_model", seed=0)
    elsewhere = model_folder(tmp_path / "elsewhere", seed=1)

    def edit(c):
        c["data"].pop("extra_test_sets")
        c["base"] = {"model": base, "seed": 7}
        c["train"].update(eval_every=0)
        c["methods"] = {"base": {"objective": "none"}, "elsewhere": {"objective": "none", "model": elsewhere},
                        "nsr-elsewhere": {"objective": "nsr", "model": elsewhere, "learning_rate": 1.0e-30,
                                          "max_steps": 1}}
    return write_config(tmp_path, edit), base, elsewhere


def test_dry_run_plans_no_training_for_an_external_checkpoint(tmp_path):
    config, base, elsewhere = external_study(tmp_path)
    result = snakemake("-n", "-p", "--configfile", str(config), workdir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = job_counts(result.stdout)
    assert counts["train"] == 1 and counts["sample"] == 3 and counts["passk"] == 3
    assert "results/models/elsewhere" not in result.stdout
    assert f"nsr train --model {elsewhere} " in result.stdout
    assert f"nsr sample --model {elsewhere} " in result.stdout
    assert "nsr sample --model results/models/base " in result.stdout
    assert "nsr sample --model results/models/nsr-elsewhere/seed1 " in result.stdout


@pytest.mark.slow
def test_external_checkpoint_is_sampled_scored_and_trained_from(tmp_path):
    config, base, elsewhere = external_study(tmp_path)
    result = snakemake("--cores", "2", "results/comparison_pass_at_k.csv", "--configfile", str(config),
                       workdir=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = tmp_path / "results"
    table = pd.read_csv(results / "comparison_pass_at_k.csv")
    assert set(table["method"]) == {"base", "elsewhere", "nsr-elsewhere"}
    report = json.loads((results / "pass_at_k" / "elsewhere" / "all_seeds.json").read_text())
    assert report["method"] == "elsewhere" and report["num_problems"] == TINY["data"]["test_size"]
    samples = {m: pd.read_parquet(results / "samples" / m / "seed1.parquet")["completion"] for m in ("base", "elsewhere")}
    assert not samples["elsewhere"].equals(samples["base"])  # another model's samples
    assert not (results / "models" / "elsewhere").exists()
    # trained from the folder: after one step at learning rate 1e-30 its weights are the folder's, not the base's
    trained = load_file(results / "models" / "nsr-elsewhere" / "seed1" / "model.safetensors")
    for name, weights in ((elsewhere, True), (base, False)):
        source = load_file(Path(name) / "model.safetensors")
        same = all(torch.allclose(trained[k], source[k], rtol=0, atol=1e-20) for k in source)
        assert same is weights, name
