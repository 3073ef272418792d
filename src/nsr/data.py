"""Problem sets: from a task adapter or a parquet file written by `nsr subset`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nsr.io import InputError, write_parquet
from nsr.tasks import REQUIRED_COLUMNS, load_task


def normalize_prompt(prompt: Any) -> Any:
    """Undo the parquet round trip of a chat prompt: numpy arrays back to lists, and the
    None-valued keys pyarrow adds to unify struct fields ({"type": "image", "text": None}) dropped."""
    if hasattr(prompt, "tolist") and not isinstance(prompt, (str, bytes)):
        prompt = prompt.tolist()
    if isinstance(prompt, list):
        return [normalize_prompt(p) for p in prompt]
    if isinstance(prompt, dict):
        return {k: normalize_prompt(v) for k, v in prompt.items() if v is not None}
    return prompt


def validate_rows(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """One clear error naming the file/column if a problem set is malformed."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {missing}; a problem set needs {list(REQUIRED_COLUMNS)}")
    if len(frame) == 0:
        raise InputError(f"{source}: no problems")
    if frame["problem_id"].duplicated().any():
        dup = frame.loc[frame["problem_id"].duplicated(), "problem_id"].iloc[0]
        raise InputError(f"{source}: duplicate problem_id {dup!r}")
    if frame["answer"].isna().any():
        raise InputError(f"{source}: column 'answer' has missing values")
    return frame


def read_problems(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(f"problem file {path} does not exist")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a non-parquet file
        raise InputError(f"{path}: not a readable parquet file ({exc})") from exc
    frame = validate_rows(frame, str(path))
    frame["problem_id"] = frame["problem_id"].astype(str)
    frame["answer"] = frame["answer"].astype(str)
    frame["prompt"] = [normalize_prompt(p) for p in frame["prompt"]]
    return frame


def load_problems(dataset: str, split: str, num: int | None = None, seed: int = 0, **options) -> pd.DataFrame:
    """A task name (generated/downloaded rows) or a .parquet path; optionally a seeded subset of `num` rows."""
    if str(dataset).endswith(".parquet"):
        frame = read_problems(dataset)
        if num is not None and num < len(frame):
            frame = frame.sample(n=num, random_state=seed).reset_index(drop=True)
        return frame
    rows = load_task(dataset, split=split, num=num, seed=seed, **options)
    return validate_rows(pd.DataFrame(rows), f"task {dataset!r} split {split!r}")


def write_subset(dataset: str, split: str, num: int | None, seed: int, output: str | Path, **options) -> pd.DataFrame:
    frame = load_problems(dataset, split=split, num=num, seed=seed, **options)
    write_parquet(output, frame)
    return frame
