"""Task adapters. Each task module exposes

    OPTIONS: tuple of option names
    check(split: str, options: dict) -> dict     (option values and local files, no data read)
    load(split: str, num: int | None, seed: int, **options) -> list[dict]

and a generated task also ``check_size(split, num, **options)``. ``load`` returns rows
``{problem_id: str, prompt: str | list[chat message], answer: str, image?: bytes, credit?: str,
numeric_match?: str}``.
Splits: "warmstart" (supervised warm-start of the embedded base), "train" (RL), "test".

``credit`` (nsr.rewards.CREDITS) is how rewards grade a wrong answer; a task sets it when its
option ``credit=graded`` asks for partial credit. No column means binary rewards.
``numeric_match`` (nsr.rewards.NUMERIC_MATCHES) is how a numeric answer is matched: no column
means relaxed (within 5%); synthchart's option ``numeric_match=exact`` sets "exact".
"""

from __future__ import annotations

import importlib

from nsr.io import InputError

TASKS = {
    "synthchart": "nsr.tasks.synthchart",
    "evochart": "nsr.tasks.evochart",
    "chartqa": "nsr.tasks.chartqa",
    "math": "nsr.tasks.math",
}

REQUIRED_COLUMNS = ("problem_id", "prompt", "answer")
CREDIT_OPTION = ("binary", "graded")


def graded_credit(task: str, value) -> bool:
    """Whether a task's ``credit`` option asks for graded rewards (binary when unset)."""
    value = "binary" if value is None or str(value).strip() == "" else str(value).strip()
    if value not in CREDIT_OPTION:
        raise InputError(f"{task}: option 'credit' must be one of {list(CREDIT_OPTION)}, got {value!r}")
    return value == "graded"


def get_task(name: str):
    if name not in TASKS:
        raise InputError(f"unknown dataset/task {name!r}; known tasks: {sorted(TASKS)} (or pass a .parquet file)")
    return importlib.import_module(TASKS[name])


def load_task(name: str, split: str, num: int | None, seed: int, **options) -> list[dict]:
    return get_task(name).load(split=split, num=num, seed=seed, **options)


def check_task(name: str, split: str, options: dict, num: int | None = None) -> None:
    """InputError for bad options (or, for a generated task, an impossible size) of ``split``,
    without loading any data: the config check runs this before any job."""
    task = get_task(name)
    task.check(split, options)
    if num is not None and hasattr(task, "check_size"):
        task.check_size(split, num, **options)
