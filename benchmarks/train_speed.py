"""RL steps/s of the embedded default's training settings, optionally side by side with another commit.

    python benchmarks/train_speed.py                         # this tree, every objective
    python benchmarks/train_speed.py --against 455e3e1       # this tree vs that commit, ratio per objective
    python benchmarks/train_speed.py --profile psr [--against 455e3e1]   # cProfile (CPU time) of one objective

The policy is results/models/base when it exists (the study's warm-started base: its completions
have the study's lengths), else --model. Settings come from config/config.yaml's `train` and `data`
sections (prompts per step, generations, completion length, learning rate, task options), one
torch thread as the study's train jobs. Every measurement runs in a fresh process with
PYTHONPATH set to the tree under test; with --against the commit is checked out in a temporary
git worktree and the two trees alternate (A B A B ...) for --rounds rounds, so load on a noisy
machine hits both alike: the ratio of medians is what counts. The first --warmup steps of each run
are not timed (lazy initialisation, first generation).

Profile of psr steps of the embedded default (2 x 128 base of the study, 16 prompts x 8 x <= 16
tokens, one thread; `--profile psr --against 455e3e1 --steps 8`: 10 steps with the 2 warm-up ones,
cProfile in CPU seconds per step, which inflates Python-heavy code; on an idle machine):

                                          455e3e1 (TRL generate)   now
    rollouts (_generate_single_turn)            0.26                 0.13 (shared_prefix_sample 0.12)
    loss forward (_get_per_token_logps)         0.22                 0.09 (each prompt once, length buckets)
    backward                                    0.35                 0.09
    rewards, optimizer, logging, rest           0.06                 0.07
    total                                       0.89                 0.38

Side by side on an idle machine (`--against 455e3e1 --steps 10 --rounds 1`, CPU s per step):
grpo 0.287 vs 0.888 (3.09x), psr 0.251 vs 0.829 (3.30x), nsr 0.206 vs 0.793 (3.86x),
w-reinforce 0.195 vs 0.729 (3.74x); wall-time ratios 3.10x, 3.31x, 3.88x, 3.77x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_settings() -> dict:
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    train = config["train"]
    return {"prompts_per_step": train["prompts_per_step"], "num_generations": train["num_generations"],
            "max_completion_length": train["max_completion_length"], "learning_rate": train["learning_rate"],
            "temperature": train["temperature"], "options": config["data"].get("options", {})}


def measure(model_dir: str, mode: str, steps: int, warmup: int, settings: dict,
            profile: str | None = None) -> tuple[float, float]:
    """(steps/s, CPU seconds per step) of `mode` in this process (the nsr it imports is the tree under
    test). CPU time of a one-thread run is its work, nearly blind to other load on the machine."""
    import torch
    from transformers import PrinterCallback, TrainerCallback

    from nsr.data import load_problems
    from nsr.train_cli import build_dataset, reward_correctness
    from nsr.trainer import NSRConfig, NSRTrainer

    torch.set_num_threads(1)
    os.environ["HF_HUB_OFFLINE"] = "1"
    prompts = settings["prompts_per_step"]
    dataset = build_dataset(load_problems("synthchart", split="train", num=prompts * (steps + warmup), seed=0,
                                          **settings["options"]))

    class StepTimes(TrainerCallback):
        times: list = []

        def on_step_end(self, *_, **__):
            self.times.append((time.perf_counter(), time.process_time()))

    timer = StepTimes()
    config = NSRConfig(
        output_dir=tempfile.mkdtemp(prefix="nsr-train-speed-"), objective=mode, seed=0,
        learning_rate=settings["learning_rate"], max_steps=steps + warmup,
        num_generations=settings["num_generations"],
        per_device_train_batch_size=prompts * settings["num_generations"],
        max_completion_length=settings["max_completion_length"], temperature=settings["temperature"],
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, log_level="error",
        lr_scheduler_type="constant",
    )
    trainer = NSRTrainer(model=model_dir, reward_funcs=reward_correctness, args=config, train_dataset=dataset,
                         callbacks=[timer])
    trainer.remove_callback(PrinterCallback)
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile(time.process_time)  # CPU time: what the code costs, not the machine's load
        profiler.enable()
        trainer.train()
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats(profile)
        stats.print_stats(40)
        stats.print_callees("grpo_trainer.py.*_generate_and_score_completions")
    else:
        trainer.train()
    timed = timer.times[warmup - 1:] if warmup else timer.times
    steps = len(timed) - 1
    return steps / (timed[-1][0] - timed[0][0]), (timed[-1][1] - timed[0][1]) / steps


def run_child(tree: Path, model_dir: str, mode: str, args, profile: str | None = None) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--model", model_dir,
               "--steps", str(args.steps), "--warmup", str(args.warmup), *(["--child-profile", profile] if profile else [])]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    if profile:
        print(out.stderr[out.stderr.find("Ordered by"):], flush=True)
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


def resolve_model(model: str | None) -> str:
    model = model or str(REPO / "results" / "models" / "base")
    if not (Path(model) / "config.json").exists():
        raise SystemExit(f"--model {model}: no model folder; build the study's base first "
                         "(snakemake --cores all results/models/base) or pass --model")
    return str(Path(model).resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="policy folder (default: results/models/base)")
    parser.add_argument("--modes", default="grpo,psr,nsr,w-reinforce")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="runs per tree and objective (median taken)")
    parser.add_argument("--against", default=None, metavar="GITREF", help="also measure this commit, alternating")
    parser.add_argument("--profile", default=None, metavar="MODE", help="cProfile one run of MODE (this tree)")
    parser.add_argument("--profile-sort", default="cumulative", choices=("cumulative", "tottime"),
                        help="order of the --profile table: time under a function, or in its own code")
    parser.add_argument("--output", default=None, help="optional JSON file for the numbers")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one measurement in this process; the caller set PYTHONPATH to the tree under test
        print(json.dumps(measure(args.model, args.child, args.steps, args.warmup, default_settings(),
                                 profile=args.child_profile)))
        return
    model_dir = resolve_model(args.model)

    trees = {"this tree": REPO}
    worktree = None
    if args.against:
        worktree = Path(tempfile.mkdtemp(prefix="nsr-against-")) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.against],
                       check=True, capture_output=True)
        trees[args.against] = worktree
    results: dict[str, dict[str, dict[str, float]]] = {name: {} for name in trees}
    try:
        if args.profile:
            for name, tree in trees.items():
                print(f"--- {name}: cProfile of {args.profile}, CPU seconds over {args.steps + args.warmup} steps")
                steps_per_s, cpu = run_child(tree, model_dir, args.profile, args, profile=args.profile_sort)
                print(f"{name}: {steps_per_s:.2f} steps/s, {cpu:.3f} CPU s/step\n", flush=True)
            return
        for mode in args.modes.split(","):
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    runs[name].append(run_child(tree, model_dir, mode, args))
            line = f"{mode:<12}"
            for name in trees:
                results[name][mode] = {"steps_per_s": statistics.median(r[0] for r in runs[name]),
                                       "cpu_s_per_step": statistics.median(r[1] for r in runs[name])}
                line += (f"  {name}: {results[name][mode]['steps_per_s']:5.2f} steps/s "
                         f"{results[name][mode]['cpu_s_per_step']:.3f} CPU s/step")
            if args.against:
                mine, theirs = results["this tree"][mode], results[args.against][mode]
                line += (f"  ratio {mine['steps_per_s'] / theirs['steps_per_s']:.2f}x wall, "
                         f"{theirs['cpu_s_per_step'] / mine['cpu_s_per_step']:.2f}x CPU")
            print(line, flush=True)
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
    settings = default_settings()
    print(f"({settings['prompts_per_step']} prompts x {settings['num_generations']} generations x <= "
          f"{settings['max_completion_length']} tokens, 1 thread, {args.steps} timed steps, median of {args.rounds})")
    if args.output:
        Path(args.output).write_text(json.dumps({"results": results, **vars(args)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
