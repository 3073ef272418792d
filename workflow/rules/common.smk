# Helpers shared by all rules: config validation, per-method settings, paths, resources and
# code stamps. Only the standard library, yaml and snakemake.utils here: the DAG must build fast.
import hashlib
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

SRC = Path(workflow.basedir) / "src" / "nsr"

validate(config, schema="../schemas/config.schema.yaml")

METHODS = list(config["methods"])
TRAINED_METHODS = [m for m in METHODS if config["methods"][m]["objective"] != "none"]
SEEDS = [int(s) for s in config["train"]["seeds"]]
SPLITS = ["train", "test"]
RULE_NAMES = ["subset", "base", "train", "sample", "passk", "plot"]

# Package modules each stage runs; their hash is a param, so editing e.g. trainer.py re-runs
# training and everything downstream, while editing plotting.py re-runs only the plots.
TASK_MODULES = ["tasks/__init__.py", "tasks/_common.py", f"tasks/{config['data']['dataset']}.py"]
STAGE_MODULES = {
    "subset": ["data.py", "data_cli.py", *TASK_MODULES],
    "base": ["base.py", "tiny.py", "vlm.py", "tasks/synthchart.py", "data.py"],
    "train": ["trainer.py", "objectives.py", "train_cli.py", "rewards.py", "vlm.py", "data.py"],
    "sample": ["sampling.py", "rewards.py", "vlm.py", "data.py"],
    "passk": ["passk.py"],
    "plot": ["plotting.py"],
}


def code_stamp(stage):
    digest = hashlib.sha256()
    for name in STAGE_MODULES[stage]:
        path = SRC / name
        if path.exists():  # e.g. no task module when the dataset is a parquet file
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def check_method(method):
    if method not in config["methods"]:
        raise ValueError(
            f"unknown method {method!r} in the requested target: config key 'methods' defines {METHODS}"
        )
    return config["methods"][method]


def method_settings(method):
    """The `train` block with this method's overrides applied."""
    settings = {k: v for k, v in config["train"].items() if k != "seeds"}
    settings.update(check_method(method))
    return settings


def trained_model_dir(wildcards):
    check_method(wildcards.method)
    return f"results/models/{wildcards.method}/seed{wildcards.seed}"


def model_dir(wildcards):
    """The policy a method is evaluated with: the base model for objective none."""
    if check_method(wildcards.method)["objective"] == "none":
        return "results/models/base"
    return trained_model_dir(wildcards)


def train_args(wildcards):
    s = method_settings(wildcards.method)
    args = [
        f"--mode {s['objective']}",
        f"--learning-rate {s['learning_rate']}",
        f"--max-steps {s['max_steps']}",
        f"--num-epochs {s['num_epochs']}",
        f"--num-generations {s['num_generations']}",
        f"--prompts-per-step {s['prompts_per_step']}",
        f"--max-completion-length {s['max_completion_length']}",
        f"--temperature {s['temperature']}",
        f"--reward-threshold {s['reward_threshold']}",
        f"--lambda-psr {s['lambda_psr']}",
        s.get("extra_args", ""),
    ]
    if s.get("eval_every", 0) > 0:
        args.append(
            f"--eval-dataset results/data/test.parquet --eval-every {s['eval_every']}"
            f" --eval-size {s.get('eval_size', 64)} --eval-samples {s.get('eval_samples', 4)}"
        )
    return " ".join(a for a in args if a)


def warmstart_args():
    flags = {"steps": "--warmstart-steps", "learning_rate": "--warmstart-lr", "batch_size": "--warmstart-batch-size"}
    warmstart = config["base"].get("warmstart", {})
    # Fixed order: the same settings written in another key order must not re-run the base job.
    return " ".join(f"{flag} {warmstart[key]}" for key, flag in flags.items() if key in warmstart)


def eval_data(wildcards):
    """The test set is an input of training only when held-out evaluation is on."""
    return ["results/data/test.parquet"] if method_settings(wildcards.method).get("eval_every", 0) > 0 else []


def accelerate_config(wildcards):
    """Relative accelerate configs are looked up in the workflow folder, so any workdir works."""
    path = Path(method_settings(wildcards.method)["accelerate_config"])
    return str(path if path.is_absolute() else Path(workflow.basedir) / path)


def rule_threads(rule):
    return config["resources"][rule]["threads"]


def rule_resources(rule):
    """Scheduler resources of a rule; gpu and cluster keys only when set.

    `gpu` is GPUs per node. On one node it goes to Snakemake/SLURM as is (--gpus); over several
    nodes it becomes gres gpu:N, which SLURM applies per node.
    """
    res = {k: v for k, v in config["resources"][rule].items() if k != "threads"}
    gpus = res.pop("gpu", 0)
    if gpus and res.get("nodes", 1) > 1:
        res["gres"] = f"gpu:{gpus}"
    elif gpus:
        res["gpu"] = gpus
    return res


def gpus_per_node(rule):
    return config["resources"][rule].get("gpu", 0)


def nodes(rule):
    return config["resources"][rule].get("nodes", 1)


def comparison_inputs():
    return expand("results/pass_at_k/{method}/seed{seed}.json", method=METHODS, seed=SEEDS)


def train_logs():
    return expand("results/models/{method}/seed{seed}", method=TRAINED_METHODS, seed=SEEDS)
