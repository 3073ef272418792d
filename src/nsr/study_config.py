"""The study config, checked before any job: `nsr check-config` and workflow/rules/common.smk.

Two passes, one line per mistake, each naming the key path:
1. the JSON schema (workflow/schemas/config.schema.yaml, the single source of truth for keys,
   types and ranges): jsonschema's errors rephrased, an unknown key with the likely one
   (`methods.w-reinforce.lamda_psr: unknown key (did you mean lambda_psr?)`);
2. what a schema cannot say: the dataset is a task or an existing parquet file, task options
   are known to the task and valid, sizes fit their source, the base model is a folder or a hub
   id, accelerate configs exist, `extra_args` parse with `nsr train`'s own parser, and no key
   is silently ignored (training keys on an untrained method).

Light on purpose (stdlib, yaml, jsonschema; pyarrow only for a parquet dataset): the workflow
imports it at DAG-build time.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable

import yaml

from nsr.io import InputError

WORKFLOW_DIR = Path(__file__).resolve().parents[2]  # the repository (editable install / checkout)
SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"
EVAL_DEFAULTS = {"eval_size": 64, "eval_samples": 4}
MAX_LINES = 8  # mistakes listed in one report; the rest are counted
_FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")  # YAML 1.1 reads 1e-4 as a string


# ------------------------------------------------------------------------------- YAML


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML keeps the last silently)."""


def _mapping_without_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise InputError(f"{mark.name}:{mark.line + 1}:{mark.column + 1}: key {key!r} is given twice")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_yaml(path: str | Path) -> dict:
    """A YAML config file as a dict; InputError naming file, line and column on any syntax error."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as stream:  # the stream's name is the file name in error marks
            data = yaml.load(stream, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise InputError(f"{path}: cannot read the config file ({exc.strerror})") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = f" ({exc.context} at line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
        raise InputError(f"{path}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {exc.problem}{context}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: YAML syntax error: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config is a YAML mapping of keys (data, base, train, ...)")
    return data


# ------------------------------------------------------------------------------- schema


def _key(path: Iterable[Any], *more: Any) -> str:
    parts = [str(p) for p in (*path, *more)]
    return ".".join(parts) if parts else "config"


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _describe(error) -> list[str]:
    """jsonschema's error as one line per mistake, naming the key path."""
    where, kind, value, instance = _key(error.absolute_path), error.validator, error.validator_value, error.instance
    if kind == "additionalProperties" and value is False:
        allowed = list(error.schema.get("properties", {}))
        lines = []
        for key in (k for k in instance if k not in allowed):
            if key == "seeds" and where.startswith("methods."):
                lines.append(f"{_key(error.absolute_path, key)}: not a per-method key (train.seeds applies to every method)")
            else:
                lines.append(f"{_key(error.absolute_path, key)}: unknown key{_suggest(key, allowed)}")
        return lines
    if kind == "required":
        # A missing key that an unknown key resembles is one mistake, reported as the typo.
        unknown = [k for k in instance if k not in error.schema.get("properties", {})]
        return [f"{_key(error.absolute_path, key)}: missing (required)" for key in value
                if key not in instance and not difflib.get_close_matches(key, unknown, n=1, cutoff=0.6)]
    if error.parent is None and list(error.relative_schema_path)[:1] == ["propertyNames"]:
        return [f"{where}: name {instance!r} is not allowed (letters, digits, _ . -, starting with a letter or digit)"]
    if kind == "type":
        hint = " (YAML reads this as text: write it with a decimal point, e.g. 1.0e-4)" if (
            isinstance(instance, str) and _FLOAT_TEXT.match(instance)) else ""
        return [f"{where}: must be {value if isinstance(value, str) else ' or '.join(value)}, got {_short(instance)}{hint}"]
    if kind == "enum":
        return [f"{where}: {_short(instance)} is not one of {', '.join(map(str, value))}{_suggest(instance, value)}"]
    if kind in _BOUNDS:
        return [f"{where}: must be {_BOUNDS[kind]} {value}, got {_short(instance)}"]
    if kind == "not":
        return [f"{where}: {_short(instance)} is not allowed ({error.schema.get('description', 'see the schema')})"]
    if kind in ("minItems", "minProperties", "minLength"):
        return [f"{where}: must not be empty"]
    if kind == "uniqueItems":
        return [f"{where}: has repeated values {_short(instance)}"]
    return [f"{where}: {error.message}"]


def load_schema(workflow_dir: str | Path = WORKFLOW_DIR) -> dict:
    return yaml.safe_load((Path(workflow_dir) / SCHEMA).read_text())


def schema_errors(config: dict, schema: dict) -> list[str]:
    from jsonschema import Draft202012Validator, validators

    # 2.0 is an integer to JSON Schema, but `nsr` flags parse integers with int(): keep floats out.
    integers_only = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    validator_class = validators.extend(Draft202012Validator, type_checker=integers_only)
    errors = sorted(validator_class(schema).iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    return _unique(line for error in errors for line in _describe(error))


def _unique(lines: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(lines))


# ------------------------------------------------------------------------------- what a schema cannot say


def option_strings(options: dict) -> dict[str, str]:
    """Task options as the `--option key=value` flags of the workflow hand them to a task (strings)."""
    return {str(k): str(v) for k, v in (options or {}).items()}


def _parquet_rows(path: Path) -> tuple[int, list[str]] | None:
    """(rows, columns) of a parquet file from its footer; None where pyarrow is missing (a
    Snakemake without it, jobs in conda envs): the subset job then checks the file."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return None
    return pq.read_metadata(path).num_rows, list(pq.read_schema(path).names)


def _dataset_errors(key: str, dataset: str, options: dict, sizes: dict[str, tuple[str, int | None]],
                    study_pool: tuple[str, int] | None = None) -> list[str]:
    """Mistakes of one dataset + options + sizes. ``sizes``: split -> (key of its size, size).
    ``study_pool``: (dataset, training problems) of the study, whose problems every test set leaves out.
    Options are named under ``key``.options."""
    from nsr.tasks import REQUIRED_COLUMNS, TASKS, get_task

    if dataset.endswith(".parquet"):
        path = Path(dataset)
        if not path.is_file():
            return [f"{key}.dataset: no such file {dataset}"]
        errors = [f"{key}.options: a .parquet dataset takes no task options"] if options else []
        try:
            footer = _parquet_rows(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a non-parquet file
            return [*errors, f"{key}.dataset: {dataset} is not a readable parquet file ({type(exc).__name__})"]
        if footer is None:
            return errors
        rows, columns = footer
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            return [*errors, f"{key}.dataset: {dataset} lacks column(s) {missing}"]
        for split, (size_key, size) in sizes.items():
            taken = study_pool[1] if study_pool and split == "test" and study_pool[0] == dataset else 0
            if size is not None and size > rows - taken:
                left = f" ({taken} of them are training problems)" if taken else ""
                errors.append(f"{size_key}: {size} problems asked for, but {dataset} holds {rows}{left}")
        return errors
    if dataset not in TASKS:
        return [f"{key}.dataset: unknown task {dataset!r}{_suggest(dataset, TASKS)}; "
                f"known tasks: {', '.join(TASKS)}, or a .parquet problem file"]
    task = get_task(dataset)
    errors = _unknown_options(key, dataset, options)
    if errors:
        return errors
    for split, (size_key, size) in sizes.items():
        try:
            task.check(split, options)
        except InputError as exc:
            return [*errors, f"{key}.options: {exc}"]  # the same options: once is enough
        if size is not None and hasattr(task, "check_size"):
            try:
                task.check_size(split, size, **options)
            except InputError as exc:
                errors.append(f"{size_key}: {exc}")
    return errors


def _unknown_options(key: str, task_name: str, options: dict) -> list[str]:
    from nsr.tasks import get_task

    known = get_task(task_name).OPTIONS
    return [f"{key}.options.{k}: unknown option of task {task_name}{_suggest(k, known)}" for k in options if k not in known]


def train_parser(only_given: bool = False) -> argparse.ArgumentParser:
    """`nsr train`'s parser; ``only_given``: no defaults and nothing required, so a parse yields
    exactly the flags on the command line."""
    from nsr.cli import ArgumentParser
    from nsr.train_cli import add_arguments

    parser = ArgumentParser(prog="nsr train")
    add_arguments(parser)
    if only_given:
        for action in parser._actions:
            action.default, action.required = argparse.SUPPRESS, False
    return parser


# `nsr train` flags the workflow sets from a config key, or itself (None).
_RULE_FLAGS = {"mode": "objective", "learning_rate": "learning_rate", "max_steps": "max_steps",
               "num_epochs": "num_epochs", "num_generations": "num_generations",
               "prompts_per_step": "prompts_per_step", "max_completion_length": "max_completion_length",
               "temperature": "temperature", "reward_threshold": "reward_threshold", "lambda_psr": "lambda_psr",
               "eval_every": "eval_every", "eval_size": "eval_size", "eval_samples": "eval_samples",
               "eval_dataset": None, "model": None, "dataset_name": None, "seed": None, "output_dir": None,
               "resume": None, "num_threads": None}


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
        settings.get("extra_args", ""),
    ]
    if settings.get("eval_every", 0) > 0:
        eval_size = settings.get("eval_size", EVAL_DEFAULTS["eval_size"])
        eval_samples = settings.get("eval_samples", EVAL_DEFAULTS["eval_samples"])
        args.append(f"--eval-dataset {eval_dataset} --eval-every {settings['eval_every']}"
                    f" --eval-size {eval_size} --eval-samples {eval_samples}")
    return [a for a in args if a]


def _extra_args_errors(key: str, settings: dict) -> list[str]:
    """`extra_args` as `nsr train` will see them: they parse, set no flag the workflow sets, and
    pass the command's own checks."""
    from nsr.train_cli import check_flags

    try:
        extra = shlex.split(settings.get("extra_args", ""))
        given = vars(train_parser(only_given=True).parse_args(extra))
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
        check_flags(train_parser().parse_args([*command, "--model", "m", "--dataset-name", "d", "--output-dir", "o"]))
    except InputError as exc:
        return [f"{key}: nsr train would stop: {exc}"]
    return []


def _method_errors(config: dict, workflow_dir: Path) -> list[str]:
    errors = []
    train, test_size = config["train"], config["data"]["test_size"]
    for method, entry in config["methods"].items():
        if entry["objective"] == "none":
            errors += [f"methods.{method}.{k}: objective none evaluates the base model untrained; "
                       "training keys do not apply" for k in entry if k != "objective"]
            continue
        settings = {**{k: v for k, v in train.items() if k != "seeds"}, **entry}

        def source(name):
            return f"methods.{method}.{name}" if name in entry else f"train.{name}"

        accelerate = Path(settings["accelerate_config"])
        if not (accelerate if accelerate.is_absolute() else workflow_dir / accelerate).is_file():
            errors.append(f"{source('accelerate_config')}: no such file {accelerate} "
                          "(relative paths start at the workflow folder, e.g. config/accelerate/single_process.yaml)")
        errors += _extra_args_errors(source("extra_args"), settings)
        eval_every, max_steps = settings.get("eval_every", 0), settings["max_steps"]
        if eval_every and max_steps != -1 and eval_every > max_steps:
            errors.append(f"{source('eval_every')}: {eval_every} is more than max_steps ({max_steps}): "
                          "held-out evaluation would never run (0 turns it off)")
        eval_size = settings.get("eval_size", EVAL_DEFAULTS["eval_size"])
        if eval_every and eval_size > test_size:
            errors.append(f"{source('eval_size')}: {eval_size} held-out problems asked for, "
                          f"but data.test_size is {test_size}")
    return _unique(errors)


def semantic_errors(config: dict, workflow_dir: str | Path = WORKFLOW_DIR) -> list[str]:
    """Mistakes a schema cannot see; ``config`` must have passed the schema. Relative data and
    model paths are taken from the current directory (Snakemake's working directory)."""
    from nsr.model_source import model_source_error
    from nsr.tasks import TASKS

    data, errors = config["data"], []
    options = option_strings(data.get("options"))
    errors += _dataset_errors("data", data["dataset"], options,
                              {"train": ("data.train_size", data["train_size"]),
                               "test": ("data.test_size", data["test_size"])},
                              study_pool=(data["dataset"], data["train_size"]))
    study_ok = not errors
    test_name = data.get("test_name", "test")
    for name, spec in (data.get("extra_test_sets") or {}).items():
        key = f"data.extra_test_sets.{name}"
        if name == test_name:
            errors.append(f"{key}: the name is the study's own test set (data.test_name); give it another name")
        dataset = spec.get("dataset", data["dataset"])
        own = option_strings(spec.get("options"))
        if dataset == data["dataset"] and not study_ok:
            # The study's dataset or options are wrong already (reported above): only this set's own option names.
            errors += _unknown_options(key, dataset, own) if dataset in TASKS else []
            continue
        # On the study's dataset an extra test set's options go over data.options (as common.smk passes them).
        merged = {**options, **own} if dataset == data["dataset"] else own
        errors += _dataset_errors(key, dataset, merged, {"test": (f"{key}.size", spec.get("size"))},
                                  study_pool=(data["dataset"], data["train_size"]))
    model = config["base"]["model"]
    if model != "embedded":
        error = model_source_error(model)
        if error:
            errors.append(f"base.model: {error}")
    elif data["dataset"] == "synthchart" and study_ok and config["base"].get("warmstart", {}).get("steps") != 0:
        # The embedded base warm-starts on synthchart's warm-start pool drawn with data.options.
        from nsr.tasks import synthchart

        try:
            synthchart.check_size("warmstart", synthchart.DEFAULT_SIZES["warmstart"], **options)
        except InputError as exc:
            errors.append(f"data.options: the embedded base's warm-start pool: {exc}")
    errors += _method_errors(config, Path(workflow_dir))
    return _unique(errors)


def config_errors(config: dict, workflow_dir: str | Path = WORKFLOW_DIR) -> list[str]:
    """Every mistake of ``config``, one line each; the schema first (the later checks need its shape)."""
    return schema_errors(config, load_schema(workflow_dir)) or semantic_errors(config, workflow_dir)


def report(errors: list[str], source: str) -> str:
    """The message of a failed check: a header naming the config, then one line per mistake."""
    lines = errors[:MAX_LINES]
    if len(errors) > MAX_LINES:
        lines.append(f"... and {len(errors) - MAX_LINES} more")
    noun = "mistake" if len(errors) == 1 else "mistakes"
    return "\n".join([f"config {source}: {len(errors)} {noun}", *(f"  {line}" for line in lines)])


# ------------------------------------------------------------------------------- `nsr check-config`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configfile", nargs="+", help="study config YAML file(s); later files update earlier ones")
    parser.add_argument("--workflow-dir", default=str(WORKFLOW_DIR),
                        help="folder with the Snakefile (schema, accelerate configs); default: this checkout")


def merge(base: dict, update: dict) -> dict:
    """Nested dicts updated key by key, as Snakemake merges several --configfile."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run(args: argparse.Namespace) -> None:
    config: dict = {}
    for path in args.configfile:
        config = merge(config, load_yaml(path))
    errors = config_errors(config, args.workflow_dir)
    source = " + ".join(args.configfile)
    if errors:  # one line per mistake (a single InputError would be printed as one line)
        print(report(errors, source), file=sys.stderr)
        sys.exit(2)
    print(f"config {source}: ok")
