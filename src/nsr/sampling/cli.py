"""`nsr sample`: n samples per test problem, scored, written to a samples file (resumable).

The file's format follows its name (nsr.sampling.formats): .json the seed guide's samples JSON,
.jsonl JSON lines, .parquet Parquet; any other name stops before a model is loaded.
"""

from __future__ import annotations

import argparse

from nsr.io import InputError
from nsr.model_source import check_model
from nsr.sampling.backends import BACKENDS, SamplingSettings, resolve_backend
from nsr.sampling.formats import samples_format
from nsr.sampling.store import sample_to_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from nsr.cli import TypedFlag
    from nsr.data_cli import add_option_argument

    parser.add_argument("--checkpoint-path", "--model", dest="model", required=True, action=TypedFlag,
                        help="model folder (e.g. grpo-start-ckpts/<model name>-<mode>-<seed> of `nsr train`) or hub id")
    parser.add_argument("--dataset-name", default="synthchart", help="task name or .parquet problem file")
    add_option_argument(parser, "task option of --dataset-name")
    parser.add_argument("--split", default="test", help="split when --dataset-name is a task (default: test)")
    parser.add_argument("--subset-size", type=int, default=None, help="number of problems (default: all)")
    parser.add_argument("--data-seed", type=int, default=2025, help="seed of the problem subset (as `nsr subset`)")
    parser.add_argument("--output-path", "--output", dest="output", required=True, action=TypedFlag,
                        help="samples file; the format follows the name: .json (the seed guide's list of records, "
                             "one per sample), .jsonl (JSON lines) or .parquet")
    parser.add_argument("--num-samples", type=int, default=256, help="samples per problem")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="auto: vllm if installed and a GPU is present, else hf")
    parser.add_argument(
        "--problems-per-call", "--batch-size", dest="problems_per_call", type=int, default=None,
        help="problems per generation call and per resume chunk (default: 1 for hf, 32 for vllm)",
    )
    parser.add_argument("--num-threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--reward-threshold", action=NoThreshold, help=argparse.SUPPRESS)


class NoThreshold(argparse.Action):
    """`--reward-threshold` was once taken here; now a sample's `correct` is the task's own accuracy."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string}: not a sampling setting: a sample is correct iff the task's verifier gives it "
                     "full credit, so Pass@k never depends on a threshold (the threshold is `nsr train`'s)")


def run(args: argparse.Namespace) -> None:
    from nsr.cli import typed_flag
    from nsr.data import load_problems
    from nsr.data_cli import parse_options

    try:
        samples_format(args.output)
    except InputError as exc:
        raise InputError(f"{typed_flag(args, 'output', '--output-path')} {exc}") from None
    settings = SamplingSettings(args.num_samples, args.temperature, args.top_p, args.max_new_tokens, args.seed)
    settings.validate()
    resolve_backend(args.backend)  # fail on a missing vllm before loading anything
    model_flag = typed_flag(args, "model", "--checkpoint-path")
    check_model(args.model, model_flag)
    problems = load_problems(args.dataset_name, split=args.split, num=args.subset_size, seed=args.data_seed,
                             **parse_options(args.option))
    frame = sample_to_file(
        args.model,
        problems,
        args.output,
        settings,
        backend=args.backend,
        problems_per_call=args.problems_per_call,
        num_threads=args.num_threads,
        model_flag=model_flag,
    )
    per_problem = frame.groupby("problem_id")["correct"].mean()
    print(
        f"wrote {len(frame)} samples ({len(per_problem)} problems x {settings.num_samples}) to {args.output}; "
        f"mean correct {frame['correct'].mean():.4f}, problems solved at least once {(per_problem > 0).mean():.4f}"
    )
