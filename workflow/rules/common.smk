# Helpers shared by all rules: config checks, per-method settings, paths, resources and code
# stamps. Only the standard library and nsr's light modules (no torch) here: the DAG must build fast.
import hashlib
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from nsr.io import InputError
from nsr import study_config
from nsr.warmstart import study_warmstart_options, warmstart_flags

min_version("9.0")

SRC = Path(workflow.basedir) / "src" / "nsr"

# The whole config is checked before any job (schema, then files, task options, sizes, extra_args):
# one line per mistake naming the key. Snakemake has parsed the files already; reading them again
# catches a key given twice, which YAML would keep silently.
CONFIG_FILES = [str(path) for path in workflow.overwrite_configfiles] or [DEFAULT_CONFIG]
try:
    for path in CONFIG_FILES:
        study_config.load_yaml(path)
except InputError as error:
    raise WorkflowError(str(error)) from None
config_mistakes = study_config.config_errors(config, workflow.basedir)
if config_mistakes:
    raise WorkflowError(study_config.report(config_mistakes, " + ".join(CONFIG_FILES)))

# Every job's `nsr` command pins its CPU code path (nsr.numerics) to this level; in the job's own
# shell, so cluster jobs get it whatever environment their node starts with.
CPU_CAPABILITY = config.get("numerics", {}).get("cpu_capability", "avx2")
shell.prefix(f"export NSR_CPU_CAPABILITY={CPU_CAPABILITY}; ")

METHODS = list(config["methods"])
TRAINED_METHODS = [m for m in METHODS if config["methods"][m]["objective"] != "none"]
# The method that bins test problems by difficulty (coverage_by_difficulty): `base`, evaluated as is.
BASE_METHOD = "base"
HAS_BASE = config["methods"].get(BASE_METHOD, {}).get("objective") == "none"
SEEDS = [int(s) for s in config["train"]["seeds"]]
SPLITS = ["train", "test"]
# The study's test set (results/data/test.parquet) is named PRIMARY_TEST_SET in tables and plots;
# each extra test set gets its own samples, Pass@k and plot panel under results/test_sets/{name}/.
PRIMARY_TEST_SET = config["data"].get("test_name", "test")
EXTRA_TEST_SETS = dict(config["data"].get("extra_test_sets") or {})
RULE_NAMES = ["subset", "base", "train", "sample", "passk", "plot"]

# Package modules each stage runs; their hash is a param, so editing e.g. trainer/ re-runs
# training and everything downstream, while editing plotting/ re-runs only the plots.
STAGE_MODULES = {
    "subset": ["data.py", "data_cli.py", "tasks/__init__.py", "tasks/_common.py"],
    "base": ["base.py", "warmstart.py", "teacher/", "tiny.py", "vlm.py", "tasks/synthchart.py", "data.py", "model_source.py", "numerics.py"],
    "train": [
        "trainer/", "objectives.py", "train_cli.py", "sampling/decoding.py", "rewards.py", "vlm.py", "data.py",
        "model_source.py", "numerics.py", "trl_args.py", "forms.py", "passk.py", "tasks/synthchart.py",  # the last three: held-out eval
    ],
    "sample": [
        "sampling/__init__.py", "sampling/decoding.py", "sampling/backends.py", "sampling/store.py", "sampling/cli.py",
        "sampling/formats.py", "rewards.py", "vlm.py", "data.py", "model_source.py", "numerics.py",
    ],
    "passk": ["passk.py", "sampling/formats.py"],
    "plot": ["plotting/"],
    "coverage": ["coverage.py", "passk.py", "sampling/formats.py", "plotting/"],
    "card": ["base_card.py", "forms.py", "passk.py", "rewards.py", "tasks/synthchart.py", "data.py", "sampling/formats.py",
             "paper_shape.py"],
    "forms": ["forms_cli.py", "forms.py", "plotting/", "rewards.py", "tasks/synthchart.py", "data.py", "passk.py"],
    "answers": ["answer_distributions_cli.py", "answer_distributions.py", "coverage.py", "forms.py", "plotting/",
                "rewards.py", "tasks/synthchart.py", "data.py", "passk.py", "sampling/formats.py"],
}


def code_stamp(stage, *modules):
    """Hash of the stage's modules plus ``modules`` (e.g. the task adapter a subset uses)."""
    digest = hashlib.sha256()
    for name in [*STAGE_MODULES[stage], *modules]:
        path = SRC / name
        # a package ("trainer/") counts with every module in it
        for file in sorted(path.glob("*.py")) if name.endswith("/") else [path]:
            if file.exists():  # e.g. no task module when the dataset is a parquet file
                digest.update(file.relative_to(SRC).as_posix().encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def task_module(dataset):
    return f"tasks/{dataset}.py"


def option_flags(options):
    """Task options as `--option 'key=value'` flags, in a fixed order (no re-run on key order)."""
    return [f"--option '{key}={option_value(value)}'" for key, value in sorted(options.items())]


def option_value(value):
    """An option as `--option` takes it: a mapping (synthchart's question-type weights) as 'a:1,b:3'."""
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return value


def subset_args(dataset, split, size, options):
    """`nsr subset` flags; no size = every problem of the split."""
    args = [f"--dataset-name {dataset}", f"--split {split}"]
    if size is not None:
        args.append(f"--subset-size {size}")
    return " ".join(args + option_flags(options))


def subset_exclusions(wildcards):
    """Test problems never overlap training problems: the test subset leaves out the train subset
    (a parquet pool draws from the rest; for a task an overlap stops the job)."""
    return ["results/data/train.parquet"] if wildcards.split == "test" else []


def primary_subset_args(wildcards):
    data = config["data"]
    return subset_args(data["dataset"], wildcards.split, data[f"{wildcards.split}_size"], data.get("options", {}))


def check_test_set(name):
    if name not in EXTRA_TEST_SETS:
        raise ValueError(
            f"unknown test set {name!r} in the requested target: config key 'data.extra_test_sets'"
            f" defines {list(EXTRA_TEST_SETS)}"
        )
    return EXTRA_TEST_SETS[name]


def test_set_dataset(name):
    return check_test_set(name).get("dataset", config["data"]["dataset"])


def test_set_subset_args(wildcards):
    """An extra test set reads the study's dataset with data.options and its own options over
    them; one that names another dataset uses only its own options."""
    spec = check_test_set(wildcards.testset)
    dataset = test_set_dataset(wildcards.testset)
    options = dict(config["data"].get("options", {})) if dataset == config["data"]["dataset"] else {}
    options.update(spec.get("options", {}))
    return subset_args(dataset, "test", spec.get("size"), options)


def check_method(method):
    if method not in config["methods"]:
        raise ValueError(
            f"unknown method {method!r} in the requested target: config key 'methods' defines {METHODS}"
        )
    return config["methods"][method]


def method_settings(method):
    """The `train` block with this method's overrides applied."""
    check_method(method)
    return study_config.method_settings(config, method)


def trained_model_dir(wildcards):
    check_method(wildcards.method)
    return f"results/models/{wildcards.method}/seed{wildcards.seed}"


def evaluated_model(wildcards):
    """The policy a method is sampled from: its trained folder, or for objective none its own
    `model` (hub id or local folder, as is) or the base."""
    entry = check_method(wildcards.method)
    if entry["objective"] == "none":
        return entry.get("model", "results/models/base")
    return trained_model_dir(wildcards)


def start_model(wildcards):
    """The policy a method trains from: its own `model` (hub id or local folder) or the base."""
    return check_method(wildcards.method).get("model", "results/models/base")


def model_files(model):
    """A model as a job input: a folder is a file dependency, a hub id none (fetched by the job)."""
    return [model] if model.startswith("results/") or Path(model).expanduser().is_dir() else []


def train_args(wildcards):
    return " ".join(study_config.train_arguments(method_settings(wildcards.method), "results/data/test.parquet"))


def warmstart_args():
    """Warm-start flags of the embedded base (nsr.warmstart.warmstart_flags); it learns synthchart's
    warm-start split with the study's task options when the study is synthchart."""
    args = [shlex.quote(arg) for arg in warmstart_flags(config["base"].get("warmstart", {}))]
    return " ".join(args + option_flags(study_warmstart_options(config) or {}))


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
    """Per-seed Pass@k of every method on every test set."""
    return [
        *expand("results/pass_at_k/{method}/seed{seed}.json", method=METHODS, seed=SEEDS),
        *expand("results/test_sets/{testset}/pass_at_k/{method}/seed{seed}.json",
                testset=list(EXTRA_TEST_SETS), method=METHODS, seed=SEEDS),
    ]


def comparison_results():
    """Seed-aggregated Pass@k files of the comparison, the study's test set first (panel order)."""
    return [
        *expand("results/pass_at_k/{method}/all_seeds.json", method=METHODS),
        *expand("results/test_sets/{testset}/pass_at_k/{method}/all_seeds.json",
                testset=list(EXTRA_TEST_SETS), method=METHODS),
    ]


def test_set_samples(testset):
    """Samples files of every method and seed on one test set (the study's own or an extra one)."""
    folder = "results/samples" if testset == PRIMARY_TEST_SET else f"results/test_sets/{testset}/samples"
    return expand(f"{folder}/{{method}}/seed{{seed}}.parquet", method=METHODS, seed=SEEDS)


def test_set_problems(testset):
    return "results/data/test.parquet" if testset == PRIMARY_TEST_SET else f"results/test_sets/{testset}/data.parquet"


def answer_forms_inputs():
    return [f for name in [PRIMARY_TEST_SET, *EXTRA_TEST_SETS] for f in [test_set_problems(name), *test_set_samples(name)]]


def answer_forms_sets():
    """`nsr forms` --set groups: name, problems parquet, samples files; the study's test set first."""
    return " ".join(
        f"--set {name} {test_set_problems(name)} {' '.join(test_set_samples(name))}"
        for name in [PRIMARY_TEST_SET, *EXTRA_TEST_SETS]
    )


def train_logs():
    return expand("results/models/{method}/seed{seed}", method=TRAINED_METHODS, seed=SEEDS)


def coverage_targets():
    """The coverage tables and figure: only a study with a `base` method (objective none) has them."""
    return [f"results/coverage_by_difficulty.{ext}" for ext in ("png", "csv", "md")] if HAS_BASE else []


def require_base(output, why):
    """An output read from the base's samples, asked for in a study without a `base` method: the
    error names the config key."""
    if not HAS_BASE:
        raise ValueError(
            f"{output} {why}: config key 'methods' has no {BASE_METHOD!r} entry with objective none"
            f" (methods: {METHODS})"
        )


def coverage_inputs(wildcards):
    require_base("results/coverage_by_difficulty", "bins problems by the base's success rate")
    return [f for name in [PRIMARY_TEST_SET, *EXTRA_TEST_SETS] for f in test_set_samples(name)]


def coverage_sets():
    """`nsr coverage` --set groups: name, samples files; the study's test set first."""
    return " ".join(
        f"--set {name} {' '.join(test_set_samples(name))}" for name in [PRIMARY_TEST_SET, *EXTRA_TEST_SETS]
    )


def answer_distributions_targets():
    """The answer distributions of the fragile problems: only a study with a `base` method has them."""
    return [f"results/answer_distributions.{ext}" for ext in ("png", "csv")] if HAS_BASE else []


def answer_distributions_inputs(wildcards):
    """Every test set's problems and samples (the `--set` groups of answer_forms_sets)."""
    require_base("results/answer_distributions", "selects problems and names wrong answers from the base's samples")
    return answer_forms_inputs()


def base_card_targets():
    """The base card: only a study with a `base` method (objective none) has one."""
    return [f"results/base_card.{ext}" for ext in ("csv", "md")] if HAS_BASE else []


def base_samples(testset):
    """The base's samples files (one per seed) on one test set."""
    return [path for path in test_set_samples(testset) if Path(path).parent.name == BASE_METHOD]


def base_card_inputs(wildcards):
    if not HAS_BASE:
        raise ValueError(
            f"results/base_card reads the base's own samples: config key 'methods' has no {BASE_METHOD!r} entry"
            f" with objective none (methods: {METHODS})"
        )
    return [f for name in [PRIMARY_TEST_SET, *EXTRA_TEST_SETS] for f in [test_set_problems(name), *base_samples(name)]]


def base_card_sets():
    """`nsr card` --set groups: name, problems parquet, the base's samples files; the study's test set first."""
    return " ".join(
        f"--set {name} {test_set_problems(name)} {' '.join(base_samples(name))}"
        for name in [PRIMARY_TEST_SET, *EXTRA_TEST_SETS]
    )
