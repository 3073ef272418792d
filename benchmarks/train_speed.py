"""Training steps/s per objective on default-like settings (run by hand, not a test).

    python benchmarks/train_speed.py                      # tiny default-shape model, config defaults
    python benchmarks/train_speed.py --model results/models/base --steps 20

Each mode trains on synthchart train problems through NSRTrainer with the `nsr train` reward;
the first --warmup steps are excluded from the timing (lazy init, first generation).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="model folder (default: an untrained tiny model of the default shape)")
    parser.add_argument("--modes", default="grpo,psr,nsr,w-reinforce")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--prompts-per-step", type=int, default=16)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--max-completion-length", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None, help="optional JSON file for the numbers")
    args = parser.parse_args()

    import torch
    from transformers import PrinterCallback, TrainerCallback

    from nsr.data import load_problems
    from nsr.tiny import build_tiny_model, build_tokenizer
    from nsr.train_cli import build_dataset, reward_correctness
    from nsr.trainer import NSRConfig, NSRTrainer

    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="nsr-train-speed-")
    model_dir = args.model
    if model_dir is None:
        tok = build_tokenizer()
        model_dir = os.path.join(tmp, "tiny")
        build_tiny_model(tok, seed=0).save_pretrained(model_dir)
        tok.save_pretrained(model_dir)
    n_prompts = args.prompts_per_step * (args.steps + args.warmup)
    dataset = build_dataset(load_problems("synthchart", split="train", num=n_prompts, seed=0))

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_end(self, *_, **__):
            self.times.append(time.perf_counter())

    results = {}
    for mode in args.modes.split(","):
        timer = StepTimes()
        config = NSRConfig(
            output_dir=os.path.join(tmp, mode), objective=mode, seed=0, learning_rate=2.5e-4,
            max_steps=args.steps + args.warmup, num_generations=args.num_generations,
            per_device_train_batch_size=args.prompts_per_step * args.num_generations,
            max_completion_length=args.max_completion_length, logging_steps=1, save_strategy="no",
            report_to="none", disable_tqdm=True, log_level="error", lr_scheduler_type="constant",
        )
        trainer = NSRTrainer(model=model_dir, reward_funcs=reward_correctness, args=config,
                             train_dataset=dataset, callbacks=[timer])
        trainer.remove_callback(PrinterCallback)  # keep the output to one line per mode
        trainer.train()
        timed = timer.times[args.warmup - 1:] if args.warmup else timer.times
        steps_per_s = (len(timed) - 1) / (timed[-1] - timed[0])
        results[mode] = round(steps_per_s, 3)
        print(f"{mode:<12} {steps_per_s:6.2f} steps/s  ({args.prompts_per_step} prompts x "
              f"{args.num_generations} generations x <= {args.max_completion_length} tokens, "
              f"{args.threads} thread(s), device {config.device})", flush=True)
    if args.output:
        from nsr.io import write_json

        write_json(args.output, {"steps_per_s": results, **vars(args)})


if __name__ == "__main__":
    main()
