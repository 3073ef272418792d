"""`nsr train`: train a policy with grpo / psr / nsr / w-reinforce (flags follow the seed guide's main.py).

The output folder (model + tokenizer/processor + train_log.csv) appears atomically when training
has finished; without --output-dir it is the seed guide's `grpo-start-ckpts/<model name>-<mode>-<seed>`.
Trainer checkpoints and the running train_log.csv live in the sibling folder
`<output-dir>.checkpoints/`, which survives a failed job (Snakemake deletes failed outputs)
so `--resume` can continue from its last complete checkpoint. A resumed run equals the
uninterrupted one: the same weights and train_log.csv (all but its wall-time `seconds` column)
on CPU, whatever step or epoch it was killed at (see nsr.trainer.NSRTrainer). With --trl fields that
reuse one generation batch for several optimizer steps (steps_per_generation / num_iterations above
gradient_accumulation_steps) it holds for a checkpoint at a generation boundary (--checkpoint-every a
multiple of those optimizer steps; tests/test_trl_passthrough.py); from any other the resumed run
generates anew mid-batch and differs (the run prints a note).

--trl KEY=VALUE sets any other field of TRL's GRPOConfig (nsr.trl_args): checked before anything is
loaded (unknown field, a field the flags here set, a value of the wrong type, use_vllm without vllm,
report_to without its logger package), then by GRPOConfig itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from nsr.io import InputError, atomic_path
from nsr.model_source import check_model, first_line, loading
from nsr.trainer.group_filter import GROUP_FILTERS, refusal
from nsr.trl_args import field_errors, parse_assignment, reporters, runtime_errors

MODES = ("grpo", "psr", "nsr", "w-reinforce")
LOG_NAME = "train_log.csv"
EVAL_SAMPLES_NAME = "eval_samples.parquet"  # the held-out evaluations' samples (--eval-every)
TENSORBOARD_NAME = "tensorboard"  # event files of report_to tensorboard, next to train_log.csv
CHECKPOINT_ROOT = "grpo-start-ckpts"  # the seed guide's checkpoint folder
EVAL_DEFAULTS = {"eval_size": 64, "eval_samples": 32}  # held-out evaluation; the workflow's defaults too
BATCH_FILTERS = ("mask", "subset")  # nsr.trainer.batch_filter; NSRConfig checks the value again


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from nsr.cli import TypedFlag
    from nsr.data_cli import add_option_argument

    parser.add_argument("--mode", choices=MODES, required=True, help="training objective")
    parser.add_argument("--vlm-name", "--model", dest="model", required=True, action=TypedFlag,
                        help="start policy: local model folder or hub id (e.g. Qwen/Qwen2.5-VL-3B-Instruct)")
    parser.add_argument("--dataset-name", required=True,
                        help="task name (synthchart, evochart, chartqa, math) or a .parquet from `nsr subset`")
    add_option_argument(parser, "task option of --dataset-name (and --eval-dataset)")
    parser.add_argument("--output-dir", default=None,
                        help=f"final HF model folder (written atomically); default: the seed guide's layout "
                             f"{CHECKPOINT_ROOT}/<model name>-<mode>-<seed>, the model name being the last part "
                             f"of --vlm-name (e.g. {CHECKPOINT_ROOT}/Qwen2.5-VL-3B-Instruct-nsr-2025)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--subset-size", type=int, default=None, help="number of training problems (default: all)")
    parser.add_argument("--num-epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="optimizer steps; overrides --num-epochs (-1: as many as --num-epochs give)")
    parser.add_argument("--num-generations", type=int, default=8, help="completions per prompt")
    parser.add_argument("--prompts-per-step", type=int, default=8, help="prompts per device per step")
    parser.add_argument("--reward-threshold", type=float, default=0.5,
                        help="in (0, 1]: a training sample is positive iff its reward >= this, negative otherwise "
                             "(1.0: fully correct only); matters with graded rewards (task option credit=graded). "
                             "Evaluation always counts full credit as correct")
    parser.add_argument("--lambda-psr", type=float, default=0.1, help="weight of correct samples in w-reinforce")
    parser.add_argument("--batch-filter", choices=BATCH_FILTERS, default="mask",
                        help="how psr / nsr leave out the samples they exclude: mask (masked inside the same "
                             "optimizer steps as every objective) or subset (the official code: removed from the "
                             "rollout batch before it is split into mini-batches, one optimizer step per mini-batch "
                             "left; nsr.trainer.batch_filter). grpo and w-reinforce keep every sample: same run")
    parser.add_argument("--group-filter", choices=tuple(GROUP_FILTERS), default="all",
                        help="which groups of --num-generations rollouts train, before --batch-filter acts on samples: "
                             "all, mixed (some but not all positive: DAPO's dynamic sampling), unsolved (no positive "
                             "sample: the zero-success restriction), solved (at least one positive); "
                             "nsr.trainer.group_filter. A filter the objective learns nothing from is refused "
                             "(grpo or psr with unsolved)")
    parser.add_argument("--group-filter-max-batches", type=int, default=0,
                        help="generation batches a step may use in all: while fewer groups than --prompts-per-step x "
                             "processes survived --group-filter, generate another batch (prompts drawn from the "
                             "training set by --seed and step), up to this many; then train on the survivors and say "
                             "so in the log. 0 (default) or 1: no refill. Unlike verl's max_num_gen_batches, 0 is not "
                             "'no limit'")
    parser.add_argument("--learning-rate", type=float, default=1e-6)
    parser.add_argument("--max-completion-length", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--num-threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="save a resumable checkpoint every N steps")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 mixed precision (default: on when CUDA is available)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in <output-dir>.checkpoints")
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep <output-dir>.checkpoints after success")
    parser.add_argument("--eval-dataset", default=None,
                        help="held-out problems (.parquet or task name, its test split) for periodic evaluation")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="at step 0 and every N steps log the held-out evaluation to train_log.csv: eval_entropy, "
                             "greedy eval_accuracy, eval_pass_at_1, eval_pass_at_k (k = eval_k = --eval-samples), "
                             "eval_malformed; its samples go to eval_samples.parquet (0: off)")
    parser.add_argument("--eval-size", type=int, default=EVAL_DEFAULTS["eval_size"],
                        help="held-out problems per evaluation (seeded subset)")
    parser.add_argument("--eval-samples", type=int, default=EVAL_DEFAULTS["eval_samples"],
                        help="sampled completions per held-out problem (eval_entropy, eval_pass_at_1, Pass@k at "
                             "k = this, eval_malformed)")
    parser.add_argument("--trl", action="append", default=[], metavar="KEY=VALUE",
                        help="a field of TRL's GRPOConfig for this run, VALUE in YAML (repeatable), e.g. "
                             "--trl steps_per_generation=4 --trl epsilon_high=0.28 --trl report_to=[tensorboard]; "
                             "fields set by the flags above are refused (use the flag)")


def build_parser(only_given: bool = False) -> argparse.ArgumentParser:
    """`nsr train`'s parser; ``only_given``: no defaults and nothing required, so a parse yields exactly
    the flags on the command line (the workflow's check of `extra_args`)."""
    from nsr.cli import ArgumentParser

    parser = ArgumentParser(prog="nsr train")
    add_arguments(parser)
    if only_given:
        for action in parser._actions:
            action.default, action.required = argparse.SUPPRESS, False
    return parser


def default_output_dir(model: str, mode: str, seed: int) -> Path:
    """The seed guide's checkpoint layout: grpo-start-ckpts/<model name>-<mode>-<seed>."""
    return Path(CHECKPOINT_ROOT) / f"{Path(model.rstrip('/')).name}-{mode}-{seed}"


def check_flags(args: argparse.Namespace) -> None:
    """The ranges of the flags (no file is looked at): one InputError naming the flag.
    The workflow's config check runs this too, on the command a train job would run."""
    checks = [
        (args.num_generations >= 2, "--num-generations must be >= 2 (TRL's GRPOTrainer needs a group per prompt)"),
        (args.lambda_psr >= 0, "--lambda-psr must be >= 0"),
        (0 < args.reward_threshold <= 1, "--reward-threshold must be in (0, 1] (rewards lie in [0, 1])"),
        (args.learning_rate > 0, "--learning-rate must be > 0"),
        (args.max_steps is None or args.max_steps == -1 or args.max_steps > 0,
         "--max-steps must be > 0 (or -1: as many as --num-epochs give)"),
        (args.num_epochs > 0, "--num-epochs must be > 0"),
        (args.subset_size is None or args.subset_size > 0, "--subset-size must be > 0"),
        (args.prompts_per_step >= 1, "--prompts-per-step must be >= 1"),
        (args.max_completion_length >= 1, "--max-completion-length must be >= 1"),
        (args.temperature > 0, "--temperature must be > 0"),
        (args.num_threads is None or args.num_threads >= 1, "--num-threads must be >= 1"),
        (args.checkpoint_every >= 1, "--checkpoint-every must be >= 1"),
        (args.eval_every >= 0, "--eval-every must be >= 0"),
        (not args.eval_every or args.eval_dataset, "--eval-every needs --eval-dataset"),
        (args.eval_size >= 1, "--eval-size must be >= 1"),
        (args.eval_samples >= 1, "--eval-samples must be >= 1"),
        (args.group_filter_max_batches >= 0, "--group-filter-max-batches must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)


def validate(args: argparse.Namespace) -> None:
    """One clear InputError naming the flag as typed, before anything is loaded or written."""
    from nsr.cli import typed_flag

    check_flags(args)
    refused = refusal(args.mode, args.group_filter, f"--mode {args.mode}")
    if refused:
        raise InputError(f"--group-filter {args.group_filter} {refused}")
    trl = trl_fields(args)
    errors = [*field_errors(trl, "--trl", use_flags=True), *runtime_errors(trl)]
    if errors:
        raise InputError(errors[0])
    model_flag = typed_flag(args, "model", "--vlm-name")
    check_model(args.model, model_flag)
    model = Path(args.model)
    if model.exists() and model.resolve() == Path(args.output_dir).resolve():
        raise InputError(f"--output-dir must differ from {model_flag}")


def trl_fields(args: argparse.Namespace) -> dict:
    """The --trl KEY=VALUE flags as a mapping (a later flag for the same field wins)."""
    return dict(parse_assignment(text) for text in args.trl)


def training_config(args: argparse.Namespace, ckpt_dir: Path):
    """The trainer's config (nsr.trainer.NSRConfig): this project's flags, then the --trl fields; built
    before anything is loaded, so TRL's own checks of the fields stop the run with one line."""
    from nsr.trainer import NSRConfig

    trl = trl_fields(args)
    logging = {"report_to": "none"}
    if reporters(trl):  # name the run after its output folder in W&B / TensorBoard
        logging = {"run_name": str(args.output_dir)}
        if "tensorboard" in reporters(trl):  # event files next to train_log.csv (moved into the output)
            os.environ["TENSORBOARD_LOGGING_DIR"] = str(ckpt_dir / TENSORBOARD_NAME)
    try:
        return NSRConfig(
            output_dir=str(ckpt_dir),
            objective=args.mode,
            lambda_psr=args.lambda_psr,
            batch_filter=args.batch_filter,
            group_filter=args.group_filter,
            group_filter_max_batches=args.group_filter_max_batches,
            reward_threshold=args.reward_threshold,
            seed=args.seed,
            learning_rate=args.learning_rate,
            num_train_epochs=args.num_epochs,
            max_steps=args.max_steps or -1,
            num_generations=args.num_generations,
            per_device_train_batch_size=args.prompts_per_step * args.num_generations,  # TRL counts completions
            max_completion_length=args.max_completion_length,
            temperature=args.temperature,
            bf16=args.bf16,
            logging_steps=1,
            save_strategy="steps",
            save_steps=args.checkpoint_every,
            save_total_limit=1,  # only the newest checkpoint is needed to resume
            **{
                "lr_scheduler_type": "constant",  # as the official (verl) runs; TRL's default decays linearly
                "beta": 0.0,  # no KL term, as the paper
                **logging,
                **trl,  # these defaults may be overridden; the fields above may not (field_errors)
            },
        )
    except (TypeError, ValueError) as exc:
        if not trl:
            raise
        raise InputError(f"--trl: TRL's GRPOConfig rejects these fields: {first_line(exc)}") from exc


def steps_per_generation(config) -> float:
    """Optimizer steps between two generations: TRL reuses one generation batch for steps_per_generation
    forward/backward passes, num_iterations times, and steps the optimizer every gradient_accumulation_steps."""
    return config.steps_per_generation * config.num_iterations / config.gradient_accumulation_steps


def reward_correctness(completions, answer, credit=None, numeric_match=None, **_):
    """TRL reward function: nsr.rewards.score of each completion against the `answer` column,
    graded and matched as the problem's `credit` and `numeric_match` columns say (nsr.rewards.row_scoring)."""
    from nsr.rewards import row_scoring, score

    scoring = row_scoring({"answer": answer, "credit": credit, "numeric_match": numeric_match})
    return [score(_completion_text(c), str(a), *s) for c, a, s in zip(completions, answer, scoring)]


def _completion_text(completion) -> str:
    if isinstance(completion, str):
        return completion
    # Conversational completion: [{"role": "assistant", "content": str | [parts]}]
    parts = []
    for message in completion:
        content = message.get("content", "")
        parts.append(content if isinstance(content, str) else "".join(p.get("text", "") for p in content))
    return "".join(parts)


def build_dataset(frame):
    """pandas problems -> datasets.Dataset that GRPOTrainer takes (images as PIL, chat prompts for VLMs)."""
    import datasets

    frame = frame.copy()
    has_images = "image" in frame.columns and frame["image"].notna().any()
    if "image" in frame.columns and not has_images:
        frame = frame.drop(columns="image")
    if has_images:
        from nsr.vlm import chat_with_image

        # TRL only attaches images to conversational prompts with an image part.
        frame["prompt"] = [chat_with_image(p) for p in frame["prompt"]]
    dataset = datasets.Dataset.from_pandas(frame, preserve_index=False)
    if has_images:
        dataset = dataset.cast_column("image", datasets.Image())
    return dataset


# Flags that do not change what is trained: a checkpoint stays resumable when only these differ.
RUN_ONLY_FLAGS = ("resume", "keep_checkpoints", "num_threads", "checkpoint_every", "output_dir", "typed_flags")
RUN_ARGS_NAME = "run_args.json"


def training_fingerprint(args: argparse.Namespace) -> dict:
    return {k: v for k, v in sorted(vars(args).items()) if k not in RUN_ONLY_FLAGS}


def checkpoint_dir(output_dir: str | Path) -> Path:
    output_dir = Path(output_dir)
    return output_dir.with_name(output_dir.name + ".checkpoints")


def last_complete_checkpoint(ckpt_dir: Path, remove_partial: bool) -> str | None:
    """The newest checkpoint the Trainer finished writing: trainer_state.json is its last file. A job
    killed while saving leaves a newer, partial checkpoint; ``remove_partial`` deletes it (so the
    Trainer's rotation, which keeps the newest, cannot delete the complete one instead)."""
    steps = {path: int(path.name.split("-")[1]) for path in ckpt_dir.glob("checkpoint-*") if path.name[11:].isdigit()}
    for path in sorted(steps, key=steps.get, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
            return str(path)
        except (OSError, ValueError):
            if remove_partial:
                shutil.rmtree(path, ignore_errors=True)
    return None


def run(args: argparse.Namespace) -> None:
    from nsr.data_cli import parse_options

    if args.output_dir is None:
        args.output_dir = str(default_output_dir(args.model, args.mode, args.seed))
    validate(args)
    ckpt_dir = checkpoint_dir(args.output_dir)
    config = training_config(args, ckpt_dir)
    from nsr.data import load_problems

    options = parse_options(args.option)
    problems = load_problems(args.dataset_name, split="train", num=args.subset_size, seed=args.seed, **options)
    if not (args.max_steps and args.max_steps > 0) and len(problems) < args.prompts_per_step:
        # TRL would stop later with a traceback: an epoch shorter than one step has no step at all
        source = f"--subset-size {args.subset_size}" if args.subset_size else f"--dataset-name {args.dataset_name}"
        raise InputError(f"{source}: {len(problems)} training problems make no full step of --prompts-per-step "
                         f"{args.prompts_per_step}; give more problems, a smaller --prompts-per-step, or --max-steps")
    eval_problems = None
    if args.eval_every:
        eval_problems = load_problems(args.eval_dataset, split="test", num=args.eval_size, seed=args.seed, **options)
        if "image" in eval_problems.columns and eval_problems["image"].isna().all():
            eval_problems = eval_problems.drop(columns="image")

    import torch

    from nsr.cli import typed_flag
    from nsr.trainer import HeldOutEvalCallback, NSRTrainer, TrainLogCallback
    from nsr.vlm import load_processing

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    model_flag = typed_flag(args, "model", "--vlm-name")
    model_path = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
    # TRL loads the model by its config's architecture (text LM or VLM, ZeRO-3 aware); the processing
    # class comes from nsr.vlm, whose loader also knows the torchvision-free processor of tiny VLMs.
    with loading(args.model, model_flag):
        processing = load_processing(model_path)
    if "image" in problems.columns and problems["image"].notna().any() and not hasattr(processing, "image_processor"):
        raise InputError(f"{model_flag} {args.model}: the problems have images but the model folder has no processor "
                         "config")

    main_process = os.environ.get("RANK", "0") == "0"
    fingerprint = json.loads(json.dumps(training_fingerprint(args), default=str))
    saved_args = ckpt_dir / RUN_ARGS_NAME
    stale = args.resume and saved_args.exists() and json.loads(saved_args.read_text()) != fingerprint
    if stale:
        print(f"--resume: {ckpt_dir} holds a run with other settings; starting from scratch", flush=True)
    if (stale or not args.resume) and ckpt_dir.exists() and main_process:
        shutil.rmtree(ckpt_dir)  # a fresh run must not mix with an earlier run's checkpoints or log
    last = last_complete_checkpoint(ckpt_dir, remove_partial=main_process) if args.resume and ckpt_dir.is_dir() else None
    # The topmost folder this run creates (the default --output-dir's grpo-start-ckpts/ included):
    # removed again if the run stops on bad input before training.
    created = None if ckpt_dir.exists() else next(p for p in [*reversed(ckpt_dir.parents), ckpt_dir] if not p.exists())
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if main_process:
        saved_args.write_text(json.dumps(fingerprint, indent=2) + "\n")

    shown = {k: v for k, v in vars(args).items() if k != "typed_flags"}
    per_generation = steps_per_generation(config)
    print("nsr train config:\n" + json.dumps({
        **shown, "checkpoints": str(ckpt_dir), "resume_from": last, "device": str(config.device),
        "bf16": config.bf16, "loss_type": config.loss_type, "beta": config.beta,
        "generation_batch_size": config.generation_batch_size, "steps_per_generation": config.steps_per_generation,
        "num_iterations": config.num_iterations, "optimizer_steps_per_generation": per_generation,
    }, indent=2, default=str), flush=True)
    if per_generation > 1 and args.checkpoint_every % per_generation:
        print(f"note: --checkpoint-every {args.checkpoint_every} is not a multiple of the optimizer steps per "
              f"generation ({per_generation:g}): a run resumed from such a checkpoint generates anew mid-batch, "
              "so it differs from an uninterrupted run", flush=True)
    if args.resume and last is None:
        print(f"--resume: no checkpoint in {ckpt_dir}; starting from scratch", flush=True)

    log_path = ckpt_dir / LOG_NAME
    held_out = HeldOutEvalCallback(
        eval_problems, processing, args.eval_every, max_new_tokens=args.max_completion_length,
        temperature=args.temperature, num_samples=args.eval_samples, seed=args.seed,
        samples_path=ckpt_dir / EVAL_SAMPLES_NAME) if args.eval_every else None
    # The evaluation first, so the log writer sees it in the same step's logs (and at step 0).
    callbacks = [held_out] if held_out else []
    callbacks.append(TrainLogCallback(log_path, extra_columns=HeldOutEvalCallback.COLUMNS if held_out else (),
                                      step_zero=held_out.step_zero if held_out else None))
    try:
        with loading(args.model, model_flag):
            trainer = NSRTrainer(
                model=model_path,
                reward_funcs=reward_correctness,
                args=config,
                train_dataset=build_dataset(problems),
                processing_class=processing,
                callbacks=callbacks,
            )
    except InputError:
        if created and main_process:  # nothing trained: leave no checkpoint folder behind
            shutil.rmtree(created, ignore_errors=True)
        raise
    trainer.train(resume_from_checkpoint=last)

    # Every rank saves (ZeRO-3 gathers weights collectively) into a staging folder next to the
    # output; the main process then renames it into place in one step.
    staging = ckpt_dir / "final-model"
    trainer.save_model(str(staging))  # model + processing class (save_pretrained)
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        for name in (LOG_NAME, EVAL_SAMPLES_NAME):
            if (ckpt_dir / name).exists():
                shutil.copy2(ckpt_dir / name, staging / name)
        if (ckpt_dir / TENSORBOARD_NAME).is_dir():
            shutil.copytree(ckpt_dir / TENSORBOARD_NAME, staging / TENSORBOARD_NAME)
        with atomic_path(args.output_dir) as tmp:
            staging.rename(tmp)
        if not args.keep_checkpoints:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
        print(f"wrote {args.output_dir} ({trainer.state.global_step} steps)")
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    if trainer.accelerator.num_processes > 1:
        # Let c10d's worker threads finish releasing their last collectives' tensors (their decref needs
        # the GIL) before the interpreter finalizes: a worker that reaches for the GIL during finalization
        # aborts the process ("terminate called without an active exception", seen with gloo ZeRO-3 on
        # CPU), which fails a run whose model is already written.
        time.sleep(1.0)
