"""Task adapters. Each task module exposes

    load(split: str, num: int | None, seed: int, **options) -> list[dict]

returning rows ``{problem_id: str, prompt: str | list[chat message], answer: str, image?: bytes}``.
Splits: "warmstart" (supervised warm-start of the embedded base), "train" (RL), "test".
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


def get_task(name: str):
    if name not in TASKS:
        raise InputError(f"unknown dataset/task {name!r}; known tasks: {sorted(TASKS)} (or pass a .parquet file)")
    return importlib.import_module(TASKS[name])


def load_task(name: str, split: str, num: int | None, seed: int, **options) -> list[dict]:
    return get_task(name).load(split=split, num=num, seed=seed, **options)
