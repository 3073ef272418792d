"""The train rule's `nsr train` command from a method's settings, and the check of `extra_args`."""

from __future__ import annotations

import shlex

from nsr.io import InputError
from nsr.train_cli import EVAL_DEFAULTS, build_parser, check_flags, training_config
from nsr.trl_args import assignments

# `nsr train` flags the workflow sets from a config key, or itself (None).
_RULE_FLAGS = {"mode": "objective", "learning_rate": "learning_rate", "max_steps": "max_steps",
               "num_epochs": "num_epochs", "num_generations": "num_generations",
               "prompts_per_step": "prompts_per_step", "max_completion_length": "max_completion_length",
               "temperature": "temperature", "reward_threshold": "reward_threshold", "lambda_psr": "lambda_psr",
               "batch_filter": "batch_filter", "group_filter": "group_filter",
               "group_filter_max_batches": "group_filter_max_batches",
               "eval_every": "eval_every", "eval_size": "eval_size", "eval_samples": "eval_samples",
               "eval_dataset": None, "model": None, "dataset_name": None, "seed": None, "output_dir": None,
               "resume": None, "num_threads": None, "trl": "trl"}


def method_settings(config: dict, method: str) -> dict:
    """`train` with the method's overrides (any key but `seeds`); a method's `trl` updates `train.trl`
    field by field."""
    train, entry = config["train"], config["methods"][method]
    settings = {**{k: v for k, v in train.items() if k != "seeds"}, **entry}
    if "trl" in entry:
        settings["trl"] = {**(train.get("trl") or {}), **(entry["trl"] or {})}
    return settings


def train_arguments(settings: dict, eval_dataset: str) -> list[str]:
    """The `nsr train` flags of one method (``settings``: `train` with the method's overrides),
    as the train rule passes them; `extra_args` last but before held-out evaluation."""
    args = [
        f"--mode {settings['objective']}",
        f"--learning-rate {settings['learning_rate']}",
        f"--max-steps {settings['max_steps']}",
        f"--num-epochs {settings['num_epochs']}",
        f"--num-generations {settings['num_generations']}",
        f"--prompts-per-step {settings['prompts_per_step']}",
        f"--max-completion-length {settings['max_completion_length']}",
        f"--temperature {settings['temperature']}",
        f"--reward-threshold {settings['reward_threshold']}",
        f"--lambda-psr {settings['lambda_psr']}",
        f"--batch-filter {settings['batch_filter']}" if "batch_filter" in settings else "",
        # only when set: the commands (and Snakemake params) of studies without the keys stay as they were
        f"--group-filter {settings['group_filter']}" if "group_filter" in settings else "",
        f"--group-filter-max-batches {settings['group_filter_max_batches']}"
        if "group_filter_max_batches" in settings else "",
        *(f"--trl {shlex.quote(field)}" for field in assignments(settings.get("trl") or {})),
        settings.get("extra_args", ""),
    ]
    if settings.get("eval_every", 0) > 0:
        eval_size = settings.get("eval_size", EVAL_DEFAULTS["eval_size"])
        eval_samples = settings.get("eval_samples", EVAL_DEFAULTS["eval_samples"])
        args.append(f"--eval-dataset {eval_dataset} --eval-every {settings['eval_every']}"
                    f" --eval-size {eval_size} --eval-samples {eval_samples}")
    return [a for a in args if a]


def extra_args_errors(key: str, settings: dict) -> list[str]:
    """`extra_args` as `nsr train` will see them: they parse, set no flag the workflow sets, and
    pass the command's own checks."""
    try:
        extra = shlex.split(settings.get("extra_args", ""))
        given = vars(build_parser(only_given=True).parse_args(extra))
    except (InputError, ValueError) as exc:
        return [f"{key}: nsr train cannot parse it: {exc}"]
    clashes = [dest for dest in given if dest in _RULE_FLAGS]
    if clashes:
        flag = "--" + clashes[0].replace("_", "-")
        source = _RULE_FLAGS[clashes[0]]
        return [f"{key}: {flag} is set by the workflow" + (f" from the config key {source}; set that instead"
                                                           if source else "")]
    command = shlex.split(" ".join(train_arguments(settings, "test.parquet")))
    try:
        check_flags(build_parser().parse_args([*command, "--model", "m", "--dataset-name", "d", "--output-dir", "o"]))
    except InputError as exc:
        return [f"{key}: nsr train would stop: {exc}"]
    return []


def trl_build_errors(key: str, settings: dict) -> list[str]:
    """A method's `trl` fields as `nsr train` builds them into TRL's GRPOConfig (TRL's own checks, e.g.
    generation_batch_size divisible by num_generations); imports TRL (seconds): `nsr check-config`
    runs it, the dry run does not."""
    from pathlib import Path

    if not settings.get("trl"):
        return []
    command = shlex.split(" ".join(train_arguments(settings, "test.parquet")))
    args = build_parser().parse_args([*command, "--model", "m", "--dataset-name", "d", "--output-dir", "check"])
    try:
        training_config(args, Path("check.checkpoints"))
    except InputError as exc:
        return [str(exc).replace("--trl", key, 1)]
    return []
