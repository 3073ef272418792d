"""Graded vs binary rewards on the embedded default, at reduced size (run by hand; not a test).

    HF_HUB_OFFLINE=1 python benchmarks/graded_rewards.py --workdir /tmp/graded \\
        [--base-dir results/models/base] [--methods grpo psr nsr w-reinforce] [--seeds 2025] \\
        [--max-steps 60] [--reward-threshold 0.5] [--test-size 100] [--num-samples 64] [--jobs 2]

From one start policy (--base-dir, or the embedded base built here with `nsr base`), each method
is trained twice per seed with the same flags and seed: once on binary rewards (the paper's
setting) and once with the synthchart option credit=graded (a ranking earns the positions it has
right; a wrong label 0) at --reward-threshold. Every model and the base are then sampled on the
same held-out test problems (`nsr sample`, a JSON samples file) and scored (`nsr passk`); Pass@k
counts full credit only, so both arms are measured by the same yardstick. Prints Pass@1/8/k_max
overall and on the rank questions, and the mean samples kept per training step (for nsr the
negatives, for psr the positives: where the threshold moved the split). Only WORKDIR is written.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

TRAIN_FLAGS = {"learning-rate": "1e-4", "num-generations": "8", "prompts-per-step": "16",
               "max-completion-length": "16", "num-threads": "1"}  # config/config.yaml's train block


def nsr(*args: str, log: Path) -> None:
    """One `nsr` command (the installed entry point next to this Python), its output in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "nsr", *args], stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        raise SystemExit(f"nsr {args[0]} failed (exit {done.returncode}); see {log}")


def pass_at(samples: Path, problem_ids: set[str] | None = None) -> dict[int, float]:
    from nsr.passk import counts_per_problem, k_values, load_samples, per_problem_table

    frame = load_samples(samples)
    if problem_ids is not None:
        frame = frame[frame["problem_id"].isin(problem_ids)]
    counts = counts_per_problem(frame)
    ks = k_values(int(counts["n"].min()))
    return dict(zip(ks, per_problem_table(counts, ks).mean(axis=0)))


def mean_kept(model_dir: Path) -> float:
    with (model_dir / "train_log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return sum(float(r["kept_samples"]) for r in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--base-dir", type=Path, default=None, help="start policy folder (default: build the embedded one)")
    parser.add_argument("--methods", nargs="+", default=["grpo", "psr", "nsr", "w-reinforce"])
    parser.add_argument("--seeds", nargs="+", default=["2025"])
    parser.add_argument("--max-steps", default="60")
    parser.add_argument("--reward-threshold", default="0.5")
    parser.add_argument("--test-size", default="100")
    parser.add_argument("--num-samples", default="64")
    parser.add_argument("--jobs", type=int, default=2, help="trainings / samplings run at once (1 thread each)")
    args = parser.parse_args()
    work = args.workdir.resolve()
    started = time.monotonic()

    base = args.base_dir.resolve() if args.base_dir else work / "base"
    if not (base / "config.json").exists():
        nsr("base", "--output-dir", str(base), "--seed", "2025", log=work / "logs" / "base.log")
    test = work / "test.parquet"
    nsr("subset", "--split", "test", "--subset-size", args.test_size, "--seed", "2025", "--output", str(test),
        log=work / "logs" / "subset.log")

    runs = {f"{rewards}-{method}-{seed}": (rewards, method, seed)
            for method in args.methods for seed in args.seeds for rewards in ("binary", "graded")}

    def train(name: str) -> None:
        rewards, method, seed = runs[name]
        flags = [f"--{k}={v}" for k, v in TRAIN_FLAGS.items()]
        options = ["--option", "credit=graded"] if rewards == "graded" else []
        nsr("train", "--mode", method, "--vlm-name", str(base), "--dataset-name", "synthchart", "--subset-size", "2000",
            *options, "--seed", seed, "--reward-threshold", args.reward_threshold, "--max-steps", args.max_steps,
            *flags, "--output-dir", str(work / "models" / name), log=work / "logs" / f"train-{name}.log")

    def sample(name: str) -> None:
        model = base if name.startswith("base-") else work / "models" / name
        nsr("sample", "--checkpoint-path", str(model), "--dataset-name", str(test), "--output-path",
            str(work / "samples" / f"{name}.json"), "--num-samples", args.num_samples, "--max-new-tokens", "16",
            "--seed", name.rsplit("-", 1)[1], "--backend", "hf", "--problems-per-call", "4", "--num-threads", "1",
            log=work / "logs" / f"sample-{name}.log")
        nsr("passk", "--samples-path", str(work / "samples" / f"{name}.json"), "--output-path",
            str(work / "pass_at_k" / f"{name}.json"), "--method-name", name, "--num-bootstrap", "1000",
            log=work / "logs" / f"passk-{name}.log")

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(train, runs))
        list(pool.map(sample, [*(f"base-{seed}" for seed in args.seeds), *runs]))

    problems = pd.read_parquet(test)
    rank_ids = set(problems.loc[problems["question_type"] == "rank", "problem_id"])
    rows = []
    for name in [*(f"base-{seed}" for seed in args.seeds), *runs]:
        result = json.loads((work / "pass_at_k" / f"{name}.json").read_text())
        k_max = str(result["n"])
        rank = pass_at(work / "samples" / f"{name}.json", rank_ids)
        rows.append({
            "run": name,
            "pass@1": 100 * result["pass_at_k"]["1"], "ci@1": [round(100 * v, 1) for v in result["ci95"]["1"]],
            "pass@8": 100 * result["pass_at_k"]["8"], f"pass@{k_max}": 100 * result["pass_at_k"][k_max],
            f"ci@{k_max}": [round(100 * v, 1) for v in result["ci95"][k_max]],
            "rank pass@1": 100 * rank[1], f"rank pass@{k_max}": 100 * rank[int(k_max)],
            "kept/step": None if name.startswith("base-") else mean_kept(work / "models" / name),
        })
    table = pd.DataFrame(rows).set_index("run")
    print(f"graded vs binary rewards: {len(runs)} trainings x {args.max_steps} steps, threshold "
          f"{args.reward_threshold}, {args.test_size} test problems ({len(rank_ids)} rank) x {args.num_samples} "
          f"samples; {time.monotonic() - started:.0f} s wall\n")
    print(table.round(1).to_markdown())


if __name__ == "__main__":
    main()
