"""The TRL passthrough: `train.trl` (config) and `nsr train --trl KEY=VALUE` -> fields of the trainer's
GRPOConfig (nsr.trainer.NSRConfig).

Light on purpose (stdlib + yaml): the workflow checks `train.trl` at DAG-build time, where importing
TRL (torch, transformers: seconds) would slow every dry run. So the fields and their types are read
from the installed TRL / transformers source (``ast``, nothing imported): an unknown field, a field
the project sets from its own keys and a value of the wrong type are found without TRL. `nsr train`
and `nsr check-config` then build the config itself (``build_errors`` in nsr.study_config), which
also runs GRPOConfig's own checks (e.g. generation_batch_size divisible by num_generations).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path
from typing import Any

import yaml

from nsr.io import InputError

# GRPOConfig fields this project sets itself: field -> (what to set instead in a study config, on the
# `nsr train` command line); None: nothing to set (nsr train fixes it: resumable checkpoints in the
# run's folders, one train_log.csv row per optimizer step).
PROJECT_FIELDS: dict[str, tuple[str | None, str | None]] = {
    "objective": ("the config key objective", "--mode"),
    "lambda_psr": ("the config key lambda_psr", "--lambda-psr"),
    "batch_filter": ("the config key batch_filter", "--batch-filter"),
    "group_filter": ("the config key group_filter", "--group-filter"),
    "group_filter_max_batches": ("the config key group_filter_max_batches", "--group-filter-max-batches"),
    "reward_threshold": ("the config key reward_threshold", "--reward-threshold"),
    "learning_rate": ("the config key learning_rate", "--learning-rate"),
    "max_steps": ("the config key max_steps", "--max-steps"),
    "num_train_epochs": ("the config key num_epochs", "--num-epochs"),
    "num_generations": ("the config key num_generations", "--num-generations"),
    "per_device_train_batch_size": ("the config key prompts_per_step", "--prompts-per-step"),
    "max_completion_length": ("the config key max_completion_length", "--max-completion-length"),
    "temperature": ("the config key temperature", "--temperature"),
    "seed": ("the config key train.seeds", "--seed"),
    "bf16": ("extra_args: --bf16 / --no-bf16", "--bf16 / --no-bf16"),
    "save_steps": ("extra_args: --checkpoint-every", "--checkpoint-every"),
    "output_dir": (None, "--output-dir"),
    "resume_from_checkpoint": (None, "--resume"),
    "save_strategy": (None, None),
    "save_total_limit": (None, None),
    "logging_strategy": (None, None),
    "logging_steps": (None, None),
}

# Where a base class named in an import from a package (not a module) is defined.
_CLASS_HOMES = {"GRPOConfig": "trl.trainer.grpo_config", "TrainingArguments": "transformers.training_args"}


def _module_file(module: str) -> Path | None:
    """The source file of ``module`` without importing it (nor its packages)."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return Path(spec.origin) if spec and spec.origin and not rest else None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _class_fields(path: Path, name: str, seen: dict[str, str]) -> None:
    """Fields (name -> annotation text) of dataclass ``name`` in ``path`` and of its bases; a subclass's
    annotation wins."""
    tree = ast.parse(path.read_text())
    imports = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            package = path.parent
            for _ in range(max(node.level - 1, 0)):
                package = package.parent
            for alias in node.names:
                imports[alias.asname or alias.name] = (node.module or "", node.level, package)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    for statement in cls.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            seen.setdefault(statement.target.id, ast.unparse(statement.annotation))
    for base in cls.bases:
        if not isinstance(base, ast.Name) or base.id not in imports:
            continue
        module, level, package = imports[base.id]
        if level:  # relative import: a sibling module of this file's package
            base_path = package.joinpath(*module.split(".")).with_suffix(".py") if module else package / "__init__.py"
        else:
            base_path = _module_file(_CLASS_HOMES.get(base.id, module))
        if base_path is not None and base_path.is_file():
            _class_fields(base_path, base.id, seen)


@functools.lru_cache(maxsize=1)
def config_fields() -> dict[str, str] | None:
    """Every field of the trainer's config (NSRConfig: GRPOConfig + TrainingArguments) -> its annotation,
    read from the source; None when TRL is not installed here (e.g. a Snakemake without it)."""
    if importlib.util.find_spec("trl") is None:
        return None
    fields: dict[str, str] = {}
    try:
        _class_fields(Path(__file__).with_name("trainer") / "config.py", "NSRConfig", fields)
    except (OSError, SyntaxError, StopIteration):
        return None
    return fields if "epsilon" in fields and "learning_rate" in fields else None


def _fits(node: ast.expr, value: Any) -> bool | None:
    """Whether ``value`` (from YAML) fits the annotation ``node``; None: not checkable (e.g. Any)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        sides = [_fits(node.left, value), _fits(node.right, value)]
        return True if True in sides else (None if None in sides else False)
    if isinstance(node, ast.Constant):
        return value is node.value if node.value is None or isinstance(node.value, bool) else value == node.value
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        outer, inner = node.value.id, node.slice
        if outer == "Literal":
            options = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            return any(_fits(option, value) for option in options)
        if outer in ("list", "tuple"):
            if not isinstance(value, list):
                return False
            item = inner.elts[0] if isinstance(inner, ast.Tuple) else inner
            return all(_fits(item, v) is not False for v in value)
        if outer == "dict":
            return isinstance(value, dict)
        if outer == "Optional":
            return value is None or _fits(inner, value)
        return None
    if isinstance(node, ast.Name):
        kinds = {"bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str),
                 "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
                 "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                 "dict": lambda v: isinstance(v, dict), "list": lambda v: isinstance(v, list)}
        if node.id in kinds:
            return kinds[node.id](value)
        return None if node.id == "Any" else False  # a class (enum, config object) YAML cannot give
    return None


def field_errors(fields: dict, key: str, use_flags: bool = False) -> list[str]:
    """Mistakes of a passthrough mapping, one line each: unknown field (did you mean ...), a field the
    project sets (and what to set instead), a value of another type than the field's annotation.
    ``key`` names the mapping (`train.trl`, `methods.nsr.trl`, or `--trl` with ``use_flags``)."""
    from nsr.study_config.schema import suggest, text_number_hint

    known = config_fields()
    errors = []
    for name, value in fields.items():
        where = f"{key} {name}" if use_flags else f"{key}.{name}"
        if name in PROJECT_FIELDS:
            instead = PROJECT_FIELDS[name][1 if use_flags else 0]
            errors.append(f"{where}: set by this project; " + (f"use {instead} instead" if instead else
                          "nsr train fixes it (resumable checkpoints, one train_log.csv row per step)"))
            continue
        if known is None:
            continue  # TRL not installed here: nsr train checks when it builds the config
        if name not in known:
            errors.append(f"{where}: not a field of TRL's GRPOConfig{suggest(name, known)}")
            continue
        annotation = known[name]
        if _fits(ast.parse(annotation, mode="eval").body, value) is False:
            errors.append(f"{where}: must be {annotation} (GRPOConfig's type), got {value!r}{text_number_hint(value)}")
    return errors


class _Loader(yaml.SafeLoader):
    """YAML with 1e-6 read as a number (YAML 1.2), as JSON writes floats."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
                              list("-+0123456789."))


def parse_assignment(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` of `--trl`: VALUE is YAML (true, 0.3, [tensorboard], {max_tokens: 8}, a string)."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise InputError(f"--trl {text}: expected KEY=VALUE (a GRPOConfig field and a YAML value)")
    try:
        return name.strip(), yaml.load(raw, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise InputError(f"--trl {name.strip()}: value {raw!r} is not YAML ({str(exc).splitlines()[0]})") from None


def assignments(fields: dict) -> list[str]:
    """A passthrough mapping as `--trl KEY=VALUE` arguments, sorted so the same mapping written in
    another order gives the same command. Values as JSON (a YAML subset); a string YAML reads back
    as itself stays bare (colocate, not "colocate")."""
    import json

    def text(value):
        if isinstance(value, str) and value and parse_assignment(f"x={value}")[1] == value:
            return value
        return json.dumps(value, separators=(",", ":"))

    return [f"{name}={text(value)}" for name, value in sorted(fields.items())]


# report_to integrations and the module each needs (transformers stops at trainer construction otherwise).
_REPORTERS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",),
              "comet_ml": ("comet_ml",), "trackio": ("trackio",)}


def reporters(fields: dict) -> list[str]:
    report_to = fields.get("report_to", [])
    report_to = [report_to] if isinstance(report_to, str) else list(report_to or [])
    return [r for r in report_to if r != "none"]


def runtime_errors(fields: dict) -> list[str]:
    """What this machine lacks for the passthrough: vllm for use_vllm, a logger's package for report_to.
    Checked by nsr train before loading anything (not by the dry run: a DAG is often planned on a
    login node without GPUs or vllm)."""
    errors = []
    if fields.get("use_vllm") and importlib.util.find_spec("vllm") is None:
        errors.append("--trl use_vllm=true: vllm is not importable here (TRL's vLLM rollouts need it on a GPU "
                      "machine: pip install vllm); leave use_vllm off to generate with transformers")
    for name in reporters(fields):
        modules = _REPORTERS.get(name, ())
        if modules and not any(importlib.util.find_spec(m) for m in modules):
            errors.append(f"--trl report_to={name}: {modules[0]} is not installed here (pip install {modules[0]})")
    return errors
