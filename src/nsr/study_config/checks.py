"""The second pass (what a schema cannot say), both passes together, and the report."""

from __future__ import annotations

from pathlib import Path

from nsr.io import InputError
from nsr.study_config.schema import WORKFLOW_DIR, suggest, unique, load_schema, schema_errors
from nsr.study_config.train_command import extra_args_errors, method_settings
from nsr.train_cli import EVAL_DEFAULTS
from nsr.trainer.group_filter import refusal
from nsr.trl_args import field_errors

MAX_LINES = 8  # mistakes listed in one report; the rest are counted


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
        return [f"{key}.dataset: unknown task {dataset!r}{suggest(dataset, TASKS)}; "
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
    return [f"{key}.options.{k}: unknown option of task {task_name}{suggest(k, known)}" for k in options if k not in known]


def _method_errors(config: dict, workflow_dir: Path) -> list[str]:
    from nsr.model_source import model_source_error

    test_size = config["data"]["test_size"]
    errors = field_errors(config["train"].get("trl") or {}, "train.trl")
    for method, entry in config["methods"].items():
        model_error = model_source_error(entry["model"]) if "model" in entry else None
        if model_error:
            errors.append(f"methods.{method}.model: {model_error}")
        if entry["objective"] == "none":
            errors += [f"methods.{method}.{k}: objective none evaluates the base model untrained; "
                       "training keys do not apply" for k in entry if k not in ("objective", "model")]
            continue
        errors += field_errors(entry.get("trl") or {}, f"methods.{method}.trl")
        settings = method_settings(config, method)

        def source(name):
            return f"methods.{method}.{name}" if name in entry else f"train.{name}"

        accelerate = Path(settings["accelerate_config"])
        if not (accelerate if accelerate.is_absolute() else workflow_dir / accelerate).is_file():
            errors.append(f"{source('accelerate_config')}: no such file {accelerate} "
                          "(relative paths start at the workflow folder, e.g. config/accelerate/single_process.yaml)")
        refused = refusal(entry["objective"], settings.get("group_filter", "all"))
        if refused:
            key = source("group_filter") + ("" if "group_filter" in entry else f" (method {method})")
            errors.append(f"{key}: {settings['group_filter']!r} {refused}")
        errors += extra_args_errors(source("extra_args"), settings)
        eval_every, max_steps = settings.get("eval_every", 0), settings["max_steps"]
        if eval_every and max_steps != -1 and eval_every > max_steps:
            errors.append(f"{source('eval_every')}: {eval_every} is more than max_steps ({max_steps}): "
                          "held-out evaluation would never run (0 turns it off)")
        eval_size = settings.get("eval_size", EVAL_DEFAULTS["eval_size"])
        if eval_every and eval_size > test_size:
            errors.append(f"{source('eval_size')}: {eval_size} held-out problems asked for, "
                          f"but data.test_size is {test_size}")
    return unique(errors)


def _phases(warmstart: dict) -> list[tuple[str, dict]]:
    """(key, settings) of each warm-start phase: the flat keys are every phase's defaults (nsr.warmstart)."""
    flat = {k: v for k, v in warmstart.items() if k != "phases"}
    if not warmstart.get("phases"):
        return [("base.warmstart", flat)]
    return [(f"base.warmstart.phases[{i}]", {**flat, **phase}) for i, phase in enumerate(warmstart["phases"])]


def _teacher_keys(warmstart: dict) -> list[str]:
    """The keys that give some phase a teacher other than the perfect one (it needs synthchart's tables)."""
    keys = []
    for key, phase in _phases(warmstart):
        if phase.get("steps", 1):
            keys += [f"{key}.{name}" for name in ("teacher_accuracy", "teacher_decay") if phase.get(name, 1) < 1]
            keys += [f"{key}.{name}" for name in ("blind_spot", "teacher_difficulty")
                     if phase.get(name, "none") != "none"]
    return keys


def _teacher_errors(warmstart: dict, question_types) -> list[str]:
    """What each phase's keys say together (nsr.warmstart.make_phase: a difficulty curve that falls, a
    teacher that acts on some of the study's ``question_types``), named by the phase's key."""
    from nsr.warmstart import make_phase

    errors = []
    for key, phase in _phases(warmstart):
        try:
            make_phase(phase, key, question_types)
        except InputError as exc:
            errors.append(str(exc))
    return errors


def _warmstart_steps(warmstart: dict) -> int:
    """Warm-start steps over all phases (a flat `steps` left out: the default, some)."""
    return sum(phase.get("steps", 1) for _, phase in _phases(warmstart))


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
    teacher = _teacher_keys(config["base"].get("warmstart", {}))
    if teacher and (model != "embedded" or data["dataset"] != "synthchart"):
        errors.append(f"{teacher[0]}: the warm-start teacher (noise, blind spots) warm-starts the embedded model on "
                      "synthchart only (base.model: embedded, data.dataset: synthchart)")
    if model != "embedded":
        error = model_source_error(model)
        if error:
            errors.append(f"base.model: {error}")
    elif data["dataset"] == "synthchart" and study_ok and _warmstart_steps(config["base"].get("warmstart", {})):
        # The embedded base warm-starts on synthchart's warm-start pool drawn with data.options.
        from nsr.tasks import synthchart

        try:
            synthchart.check_size("warmstart", synthchart.DEFAULT_SIZES["warmstart"], **options)
        except InputError as exc:
            errors.append(f"data.options: the embedded base's warm-start pool: {exc}")
        errors += _teacher_errors(config["base"].get("warmstart", {}), synthchart.parse_options(**options)["types"])
    errors += _method_errors(config, Path(workflow_dir))
    return unique(errors)


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
