"""The Snakemake DAG: lint, dry runs, config validation, and the real tiny study end to end."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake_command(*args: str, workdir: Path | None = None) -> tuple[list[str], dict]:
    cmd = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args]
    if workdir is not None:
        cmd += ["--directory", str(workdir)]
    # The tiny study is a CPU study (gpu: 0); a visible GPU would change the numbers the tests compare.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return cmd, env


def snakemake(*args: str, workdir: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd, env = snakemake_command(*args, workdir=workdir)
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    for line in lines[start + 3 :]:
        match = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


def write_config(tmp_path: Path, edit) -> Path:
    config = yaml.safe_load(TINY_CONFIG.read_text())
    edit(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_dry_run_default_lists_method_by_seed_jobs(tmp_path):
    result = snakemake("-n", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    seeds = len(config["train"]["seeds"])
    methods = config["methods"]
    trained = [m for m, s in methods.items() if s["objective"] != "none"]
    counts = job_counts(result.stdout)
    assert counts["train"] == len(trained) * seeds
    assert counts["sample"] == len(methods) * seeds
    assert counts["passk"] == len(methods) * seeds
    assert counts["passk_seeds"] == len(methods)
    assert counts["subset"] == 2 and counts["base"] == 1
    assert counts["plot_comparison"] == 1 and counts["plot_training"] == 1
    assert counts["coverage_by_difficulty"] == 1 and counts["base_card"] == 1
    assert counts["answer_distributions"] == 1


def local_task_files(options: dict, workdir: Path) -> None:
    """The data files and image folder a preset's task options name, as a user would download them."""
    for key, value in options.items():
        if key == "image_root":
            (workdir / value).mkdir(parents=True, exist_ok=True)
        elif key.endswith("path"):
            (workdir / value).parent.mkdir(parents=True, exist_ok=True)
            (workdir / value).write_text("[]")


@pytest.mark.parametrize("preset", sorted([*(REPO / "config" / "experiments").glob("*.yaml"),
                                            *(REPO / "config" / "examples").glob("*.yaml")]), ids=lambda p: p.stem)
def test_dry_run_presets(preset, tmp_path):
    local_task_files(yaml.safe_load(preset.read_text())["data"].get("options", {}), tmp_path)
    result = snakemake("-n", "--configfile", str(preset), workdir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(preset.read_text())
    trained = [m for m, s in config["methods"].items() if s["objective"] != "none"]
    counts = job_counts(result.stdout)
    runs = len(config["methods"]) * len(config["train"]["seeds"])
    assert counts["train"] == len(trained) * len(config["train"]["seeds"])
    assert counts["sample"] == runs
    extra = config["data"].get("extra_test_sets", {})
    assert counts.get("subset_test_set", 0) == len(extra)
    assert counts.get("sample_test_set", 0) == counts.get("passk_test_set", 0) == runs * len(extra)
    assert counts.get("passk_seeds_test_set", 0) == len(config["methods"]) * len(extra)


def test_math_preset_evaluates_math500_aime25_amc23(tmp_path):
    preset = REPO / "config" / "experiments" / "qwen2.5-math-7b-math.yaml"
    result = snakemake("-n", "-p", "--configfile", str(preset), workdir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for test_set in ("aime25", "amc23"):
        assert f"results/test_sets/{test_set}/pass_at_k/nsr/all_seeds.json" in result.stdout
        # the extra set keeps the study's options (train hub id) with its own test_set over them
        assert re.search(rf"nsr subset --dataset-name math --split test --option 'test_set={test_set}'"
                         rf" --option 'train_hub_id=[^']+' --seed", result.stdout), result.stdout
    assert "--test-set math500" in result.stdout and "--test-set aime25" in result.stdout


def test_single_method_target_runs_only_its_branch(tmp_path):
    result = snakemake("-n", "results/pass_at_k/nsr/seed1.json", "--configfile", str(TINY_CONFIG), workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts == {"subset": 2, "base": 1, "train": 1, "sample": 1, "passk": 1, "total": 6}
    assert "results/models/nsr/seed1" in result.stdout
    assert "results/models/psr" not in result.stdout


def test_single_method_on_an_extra_test_set(tmp_path):
    target = "results/test_sets/min/pass_at_k/nsr/seed1.json"
    result = snakemake("-n", target, "--configfile", str(TINY_CONFIG), workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts == {"subset": 2, "subset_test_set": 1, "base": 1, "train": 1, "sample_test_set": 1,
                      "passk_test_set": 1, "total": 7}
    unknown = snakemake("-n", target.replace("min", "aime"), "--configfile", str(TINY_CONFIG), workdir=tmp_path)
    assert unknown.returncode != 0
    assert "unknown test set 'aime'" in unknown.stdout + unknown.stderr


def test_study_without_a_base_has_no_coverage_target(tmp_path):
    """Coverage bins problems by the base's success rate: no `base` method, no such output; asked
    for anyway, the dry run names the config key."""
    config = write_config(tmp_path, lambda c: c["methods"].pop("base"))
    result = snakemake("-n", "--configfile", str(config), workdir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "coverage_by_difficulty" not in job_counts(result.stdout)
    assert "answer_distributions" not in job_counts(result.stdout)
    asked = snakemake("-n", "results/coverage_by_difficulty.csv", "--configfile", str(config), workdir=tmp_path)
    assert asked.returncode != 0
    assert "config key 'methods' has no 'base' entry with objective none" in asked.stdout + asked.stderr


def test_embedded_base_warm_starts_on_the_study_task_options(tmp_path):
    config = write_config(tmp_path, lambda c: (c["data"].update(
        options={"types": "rank", "max_categories": 4, "credit": "graded", "numeric_match": "exact"}),
        c["base"]["warmstart"].update(phases=[{"steps": 60}, {"steps": 6, "blind_spot": "last_unseen"}])))
    result = snakemake("-n", "-p", "results/models/base", "--configfile", str(config), workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    base_command = next(line for line in result.stdout.splitlines() if "nsr base" in line)
    assert "--option 'max_categories=4' --option 'types=rank'" in base_command
    assert "--warmstart-phase steps=60 --warmstart-phase blind_spot=last_unseen,steps=6" in base_command
    # rewards only: switching credit or numeric_match keeps the warm-started base
    assert "credit" not in base_command and "numeric_match" not in base_command
    # a hub / local model is copied as is: task options are not its parameters
    hub = write_config(tmp_path, lambda c: (c["data"].update(options={"types": "rank"}), c["base"].update(model="org/m")))
    result = snakemake("-n", "-p", "results/models/base", "--configfile", str(hub), workdir=tmp_path)
    assert "--option" not in next(line for line in result.stdout.splitlines() if "nsr base" in line)


# A few mistakes of tests/study_config/test_config_checks.py, through Snakemake: the dry run stops
# before any job with one short message naming the key (not Snakemake's schema dump of the config).
BAD_CONFIGS = {
    "top-level typo": (lambda c: c.update(sampleing=c.pop("sampling")), "sampleing: unknown key (did you mean sampling?)"),
    "method key typo": (lambda c: c["methods"]["w-reinforce"].update(lamda_psr=0.5),
                        "methods.w-reinforce.lamda_psr: unknown key (did you mean lambda_psr?)"),
    "missing dataset file": (lambda c: c["data"].update(dataset="missing.parquet"),
                             "data.dataset: no such file missing.parquet"),
    "bad extra_args": (lambda c: c["train"].update(extra_args="--checkpoint-evry 5"),
                       "train.extra_args: nsr train cannot parse it: unrecognized arguments: --checkpoint-evry 5"
                       " (see nsr train --help)"),
    "no bootstrap": (lambda c: c["evaluation"].update(num_bootstrap=0), "evaluation.num_bootstrap: must be >= 1, got 0"),
    "grpo on unsolved groups": (lambda c: c["methods"].update({"grpo-unsolved": {"objective": "grpo",
                                                                                "group_filter": "unsolved"}}),
                                "methods.grpo-unsolved.group_filter: 'unsolved' keeps only groups with no positive "
                                "sample, from which objective 'grpo' learns nothing (every advantage is zero)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_stops_before_any_job_naming_the_key(case, tmp_path):
    edit, message = BAD_CONFIGS[case]
    config = write_config(tmp_path, edit)
    result = snakemake("-n", "--configfile", str(config), workdir=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"config {config}: 1 mistake\n  {message}\n" in output, output
    assert "Job stats" not in output and len(output.strip().splitlines()) < 10, output


def test_yaml_error_in_the_default_config_names_file_and_line(tmp_path):
    """Snakemake's own message for a broken config file names neither; the workflow checks the
    embedded default itself (a --configfile is parsed by Snakemake first: `nsr check-config`)."""
    copy = tmp_path / "workflow-copy"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", ".venv", "results", "logs", ".snakemake",
                                                                 "tests", "benchmarks", "docs", "__pycache__"))
    default = copy / "config" / "config.yaml"
    default.write_text(default.read_text() + "evaluation: {num_bootstrap: [1}\n")
    lines = default.read_text().count("\n")
    cmd = [*SNAKEMAKE, "-s", str(copy / "Snakefile"), "-n", "--directory", str(tmp_path)]
    result = subprocess.run(cmd, cwd=copy, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"{default}:{lines}:31: YAML syntax error: expected ',' or ']', but got '}}'" in result.stdout + result.stderr


def test_no_training_key_changes_how_any_method_is_evaluated(tmp_path):
    """Pass@k depends on the model and the sampling/evaluation keys only: with every training key
    changed (in train and in every trained method) the sample and passk commands are the same."""
    def commands(config):
        result = snakemake("-n", "-p", "--forceall", "--configfile", str(config), workdir=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = [line.removeprefix("Shell command: ").strip() for line in result.stdout.splitlines()]
        return sorted(line for line in lines if line.startswith(("nsr gpus --count 0 -- nsr sample", "nsr passk")))

    def change_training(c):
        changed = dict(learning_rate=0.5, max_steps=1, num_epochs=3, num_generations=3, prompts_per_step=1,
                       max_completion_length=3, temperature=0.7, reward_threshold=1.0, lambda_psr=0.9,
                       extra_args="--checkpoint-every 7", eval_every=0)
        c["train"].update(changed)
        for entry in c["methods"].values():
            if entry["objective"] != "none":
                entry.update(reward_threshold=0.2, lambda_psr=0.0)

    same = commands(TINY_CONFIG)
    # per method and test set: sample, passk of the seed, passk over seeds
    assert len(same) == 2 * 3 * len(yaml.safe_load(TINY_CONFIG.read_text())["methods"])
    assert commands(write_config(tmp_path, change_training)) == same


def test_unknown_method_in_target_is_named(tmp_path):
    result = snakemake(
        "-n", "results/pass_at_k/ppo/seed1.json", "--configfile", str(TINY_CONFIG), workdir=tmp_path
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "unknown method 'ppo'" in output and "methods" in output, output


# --- the real DAG, end to end --------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("study")
    config = workdir / "config.yaml"
    shutil.copy(TINY_CONFIG, config)
    result = snakemake("--cores", "2", "--configfile", str(config), workdir=workdir, timeout=600)
    if result.returncode != 0:
        logs = "\n".join(f"== {p}\n{p.read_text()[-3000:]}" for p in sorted((workdir / "logs").rglob("*.log")))
        pytest.fail(f"tiny study failed:\n{result.stderr[-5000:]}\n{logs}")
    return workdir, config


@pytest.mark.slow
def test_tiny_study_produces_every_artifact(tiny_study):
    from transformers import AutoModelForCausalLM

    workdir, config_path = tiny_study
    config = yaml.safe_load(config_path.read_text())
    results = workdir / "results"
    for split in ("train", "test"):
        frame = pd.read_parquet(results / "data" / f"{split}.parquet")
        assert len(frame) == config["data"][f"{split}_size"]
    AutoModelForCausalLM.from_pretrained(results / "models" / "base")
    n = config["sampling"]["num_samples"]
    for method, settings in config["methods"].items():
        for seed in config["train"]["seeds"]:
            if settings["objective"] != "none":
                model_dir = results / "models" / method / f"seed{seed}"
                AutoModelForCausalLM.from_pretrained(model_dir)
                log = pd.read_csv(model_dir / "train_log.csv")
                # step 0 (the base's held-out evaluation), then one row per step, all evaluated (eval_every 1)
                assert log["step"].tolist() == list(range(settings.get("max_steps", config["train"]["max_steps"]) + 1))
                assert {"loss", "reward_mean", "frac_correct", "kept_samples", "entropy"} <= set(log.columns)
                assert log["eval_entropy"].gt(0).all() and log["eval_accuracy"].between(0, 1).all()
                assert log["eval_pass_at_1"].le(log["eval_pass_at_k"]).all() and log["eval_malformed"].between(0, 1).all()
                assert log["eval_k"].eq(config["train"]["eval_samples"]).all()
                assert (model_dir / "eval_samples.parquet").exists()
            samples = pd.read_parquet(results / "samples" / method / f"seed{seed}.parquet")
            assert len(samples) == n * config["data"]["test_size"]
            assert samples.groupby("problem_id")["sample_idx"].nunique().eq(n).all()
            report = json.loads((results / "pass_at_k" / method / f"seed{seed}.json").read_text())
            assert report["method"] == method and report["n"] == n
            assert report["num_problems"] == config["data"]["test_size"]
            # Pass@1 is the mean correctness of the samples.
            assert report["pass_at_k"]["1"] == pytest.approx(samples["correct"].mean(), abs=1e-9)
            assert report["test_set"] == "mix"
            # the extra test set: its own problems, samples and Pass@k
            extra = results / "test_sets" / "min"
            samples = pd.read_parquet(extra / "samples" / method / f"seed{seed}.parquet")
            report = json.loads((extra / "pass_at_k" / method / f"seed{seed}.json").read_text())
            assert report["test_set"] == "min" and report["num_problems"] == 3
            assert report["pass_at_k"]["1"] == pytest.approx(samples["correct"].mean(), abs=1e-9)
    extra_set = pd.read_parquet(results / "test_sets" / "min" / "data.parquet")
    assert len(extra_set) == 3 and extra_set["question_type"].eq("min").all()
    table = pd.read_csv(results / "comparison_pass_at_k.csv")
    assert list(dict.fromkeys(table["test_set"])) == ["mix", "min"]
    for test_set, rows in table.groupby("test_set"):
        assert set(rows["method"]) == set(config["methods"]), test_set
    markdown = (results / "comparison_pass_at_k.md").read_text()
    assert "### mix (4 problems)" in markdown and "### min (3 problems)" in markdown
    for figure in ("comparison_pass_at_k.png", "training_curves.png", "coverage_by_difficulty.png"):
        assert (results / figure).stat().st_size > 10_000
    # coverage by base difficulty: every method x bin on each test set, each set's problems binned once
    coverage = pd.read_csv(results / "coverage_by_difficulty.csv")
    assert list(coverage.columns) == ["test_set", "method", "bin", "problems", "solved_pct", "mean_success_pct"]
    assert len(coverage) == 2 * len(config["methods"]) * 5
    for test_set, size in (("mix", config["data"]["test_size"]), ("min", 3)):
        rows = coverage[coverage["test_set"] == test_set]
        assert rows.groupby("method")["problems"].sum().eq(size).all(), test_set
        assert rows.loc[rows["problems"] > 0, "solved_pct"].between(0, 100).all()
    assert "**mix** (4 problems)" in (results / "coverage_by_difficulty.md").read_text()
    # answer distributions: per selected problem and method the six categories' shares sum to 1; the
    # base's wrong answers are its own most frequent wrong ones in its samples
    distributions = pd.read_csv(results / "answer_distributions.csv", keep_default_na=False)
    assert (results / "answer_distributions.png").stat().st_size > 10_000
    assert set(distributions["test_set"]) <= {"mix", "min"} and len(distributions)
    blocks = distributions.groupby(["test_set", "problem_id", "method"])
    assert blocks.size().eq(6).all() and np.allclose(blocks["share"].sum(), 1.0)
    assert blocks["method"].first().groupby(level=[0, 1]).size().eq(len(config["methods"])).all()
    base = distributions[distributions["method"] == "base"]
    for (test_set, pid), rows in base.groupby(["test_set", "problem_id"]):
        root = results if test_set == "mix" else results / "test_sets" / test_set
        samples = pd.concat(pd.read_parquet(root / "samples" / "base" / f"seed{s}.parquet")
                            for s in config["train"]["seeds"])
        named = rows.loc[rows["category"].str.startswith("base_wrong") & rows["answer"].ne("")]
        counts = samples[(samples["problem_id"] == pid) & ~samples["correct"]]["extracted"].value_counts()
        for answer, share in zip(named["answer"], named["share"]):
            assert counts[answer] == round(share * len(samples[samples["problem_id"] == pid])), (pid, answer)
    assert (results / "comparison_pass_at_k.md").exists()
    for rule in ("subset", "base", "train", "sample", "passk", "plot"):
        assert list((workdir / "logs" / rule).rglob("*.log")), rule


@pytest.mark.slow
def test_base_card_recounted_from_the_base_samples(tiny_study):
    """results/base_card.csv of the DAG against a count of the base's own samples made here."""
    from nsr.forms import classify

    workdir, config_path = tiny_study
    config = yaml.safe_load(config_path.read_text())
    results = workdir / "results"
    card = pd.read_csv(results / "base_card.csv")
    assert list(dict.fromkeys(card["test_set"])) == ["mix", "min"]
    problems = pd.read_parquet(results / "data" / "test.parquet")
    samples = pd.concat([pd.read_parquet(results / "samples" / "base" / f"seed{seed}.parquet")
                         for seed in config["train"]["seeds"]], ignore_index=True)
    classified = classify(problems, samples)
    per_problem = []
    for _, group in classified.groupby("problem_id"):
        counts = group["answer_text"].value_counts()
        top = counts[counts == counts.max()].index
        right = set(group.loc[group["correct"], "answer_text"])
        per_problem.append((group["correct"].mean(), sum(a in right for a in top) / len(top), group["correct"].any()))
    pass1, mode, solved = (100 * sum(column) / len(per_problem) for column in zip(*per_problem))
    overall = card[(card["test_set"] == "mix") & (card["question_type"] == "all")].iloc[0]
    assert overall["problems"] == config["data"]["test_size"] and overall["n"] == config["sampling"]["num_samples"]
    assert overall["pass1"] == pytest.approx(pass1) and overall["mode_right"] == pytest.approx(mode)
    assert overall["headroom"] == pytest.approx(mode - pass1) and overall["solved"] == pytest.approx(solved)
    assert overall["malformed"] == pytest.approx(100 * (classified["form"] == "malformed").mean())
    assert "targets met" in (results / "base_card.md").read_text()


@pytest.mark.slow
def test_second_run_does_nothing(tiny_study):
    workdir, config = tiny_study
    result = snakemake("-n", "--configfile", str(config), workdir=workdir)
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_changing_one_method_reruns_only_its_branch(tiny_study):
    workdir, config_path = tiny_study
    config = yaml.safe_load(config_path.read_text())
    config["methods"]["w-reinforce"]["lambda_psr"] = 0.3
    changed = workdir / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "--configfile", str(changed), workdir=workdir)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    seeds = len(config["train"]["seeds"])
    assert counts["train"] == counts["sample"] == counts["passk"] == counts["passk_seeds"] == seeds
    assert counts["sample_test_set"] == counts["passk_test_set"] == counts["passk_seeds_test_set"] == seeds
    assert "output: results/models/w-reinforce/seed1" in result.stdout
    for other in ("base", "grpo", "psr", "nsr"):
        assert f"output: results/models/{other}" not in result.stdout
        assert f"output: results/samples/{other}/" not in result.stdout
        assert f"output: results/test_sets/min/samples/{other}/" not in result.stdout
    assert "subset" not in counts and "subset_test_set" not in counts and "base" not in counts


@pytest.mark.slow
def test_report_holds_both_figures_and_the_table(tiny_study):
    workdir, config = tiny_study
    report = workdir / "report.html"
    result = snakemake("--report", str(report), "--configfile", str(config), workdir=workdir)
    assert result.returncode == 0, result.stderr
    html = report.read_text()
    for name in ("comparison_pass_at_k.png", "comparison_pass_at_k.csv", "training_curves.png",
                 "coverage_by_difficulty.png", "answer_distributions.png"):
        assert name in html


@pytest.mark.slow
def test_dag_pass_at_k_recomputed_from_its_samples(tiny_study):
    """Every Pass@k JSON of the DAG equals a brute-force recomputation from its samples file
    (per problem 1 - C(n-c, k) / C(n, k) with math.comb, the correct column from the task's own
    verifier), and the numbers are not trivial: some method lies strictly between 0 and 1."""
    from nsr.rewards import score

    workdir, config_path = tiny_study
    config = yaml.safe_load(config_path.read_text())
    results = workdir / "results"
    pass_at_1 = {}
    for test_set, root in (("mix", results), ("min", results / "test_sets" / "min")):
        for method in config["methods"]:
            samples = pd.read_parquet(root / "samples" / method / "seed1.parquet")
            rewards = [score(c, a) for c, a in zip(samples["completion"], samples["answer"])]
            assert samples["reward"].tolist() == rewards
            assert samples["correct"].tolist() == [r == 1.0 for r in rewards]  # full credit, no threshold
            counts = samples.groupby("problem_id")["correct"].agg(["size", "sum"]).sort_index()
            report = json.loads((root / "pass_at_k" / method / "seed1.json").read_text())
            n = config["sampling"]["num_samples"]
            assert list(report["pass_at_k"]) == [str(k) for k in (1, 2, 4, 8)] and report["n"] == n
            per_problem = {}
            for k in (1, 2, 4, 8):
                values = [1 - math.comb(int(size - c), k) / math.comb(int(size), k) for size, c in counts.to_numpy()]
                assert report["pass_at_k"][str(k)] == pytest.approx(sum(values) / len(values), abs=1e-12)
                per_problem[k] = values
            # the percentile bootstrap over problems (numpy's default_rng(0), as `nsr passk` documents)
            picks = np.random.default_rng(0).integers(0, len(counts), size=(config["evaluation"]["num_bootstrap"],
                                                                            len(counts)))
            for k, values in per_problem.items():
                means = np.asarray(values)[picks].mean(axis=1)
                assert report["ci95"][str(k)] == pytest.approx([np.percentile(means, 2.5), np.percentile(means, 97.5)])
            pass_at_1[test_set, method] = report["pass_at_k"]["1"]
    assert all(0 < pass_at_1["mix", method] < 1 for method in config["methods"]), pass_at_1
    # each method is sampled from its own model: trained models sample differently from the base
    base = pd.read_parquet(results / "samples" / "base" / "seed1.parquet")["completion"]
    assert not pd.read_parquet(results / "samples" / "nsr" / "seed1.parquet")["completion"].equals(base)


@pytest.mark.slow
def test_killed_dag_recovers_with_unlock_and_equals_an_uninterrupted_run(tiny_study):
    """kill -9 of Snakemake and its jobs while nsr trains (it has checkpoints): the rerun stops
    with a LockException; README's `snakemake --unlock` then lets the same command finish, and the
    NSR model, its log (but wall times) and its samples equal the uninterrupted run's byte for byte.
    Runs last: it re-makes nsr's outputs in the shared study folder."""
    workdir, config = tiny_study
    results = workdir / "results"
    model, samples = results / "models" / "nsr" / "seed1", results / "samples" / "nsr" / "seed1.parquet"
    reference = {"weights": (model / "model.safetensors").read_bytes(), "samples": samples.read_bytes(),
                 "log": pd.read_csv(model / "train_log.csv").drop(columns="seconds")}
    shutil.rmtree(model)
    samples.unlink()

    target = ["--cores", "2", str(samples.relative_to(workdir)), "--configfile", str(config)]
    cmd, env = snakemake_command(*target, workdir=workdir)
    ckpts = model.with_name("seed1.checkpoints")
    with subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True) as run:
        deadline = time.monotonic() + 300
        while not list(ckpts.glob("checkpoint-*/trainer_state.json")):
            assert run.poll() is None and time.monotonic() < deadline, "nsr training never wrote a checkpoint"
            time.sleep(0.02)
        os.killpg(run.pid, signal.SIGKILL)  # Snakemake and every job it started
        run.wait()
    assert not model.exists() and not samples.exists()

    locked = snakemake(*target, workdir=workdir)
    assert locked.returncode != 0 and "LockException" in locked.stdout + locked.stderr
    unlock = snakemake("--unlock", "--configfile", str(config), workdir=workdir)
    assert unlock.returncode == 0, unlock.stderr
    resumed = snakemake(*target, workdir=workdir, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    log = (workdir / "logs" / "train" / "nsr" / "seed1.log").read_text()
    assert '"resume_from": "' + str(ckpts.relative_to(workdir) / "checkpoint-") in log  # resumed, not restarted
    assert (model / "model.safetensors").read_bytes() == reference["weights"]
    pd.testing.assert_frame_equal(pd.read_csv(model / "train_log.csv").drop(columns="seconds"), reference["log"])
    assert samples.read_bytes() == reference["samples"]
