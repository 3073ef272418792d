"""Problem sets: from a task adapter or a parquet file written by `nsr subset`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nsr.io import InputError, write_parquet
from nsr.rewards import CREDITS, NUMERIC_MATCHES
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
    for column, values in (("credit", CREDITS), ("numeric_match", NUMERIC_MATCHES)):  # per-problem scoring
        if column in frame.columns:
            bad = frame.loc[~frame[column].isin(values), column]
            if len(bad):
                raise InputError(f"{source}: column '{column}' must be one of {list(values)}, found {bad.iloc[0]!r}")
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


def load_problems(dataset: str, split: str, num: int | None = None, seed: int = 0,
                  exclude_ids: frozenset[str] = frozenset(), **options) -> pd.DataFrame:
    """A task name (generated/downloaded rows) or a .parquet path; optionally a seeded subset of `num` rows.

    A parquet file is one pool for every split: rows whose problem_id is in ``exclude_ids`` are
    dropped before the subset is drawn (the study's test set leaves out its training problems).
    A task's splits are disjoint by the task's own design, so there ``exclude_ids`` is a check:
    an overlap is an error.
    """
    if str(dataset).endswith(".parquet"):
        frame = read_problems(dataset)
        frame = frame[~frame["problem_id"].isin(exclude_ids)].reset_index(drop=True)
        if frame.empty:
            raise InputError(f"{dataset}: no problems left for split {split!r} after leaving out the "
                             f"{len(exclude_ids)} problems of the excluded set(s)")
        if num is not None and num < len(frame):
            frame = frame.sample(n=num, random_state=seed).reset_index(drop=True)
        return frame
    rows = load_task(dataset, split=split, num=num, seed=seed, **options)
    frame = validate_rows(pd.DataFrame(rows), f"task {dataset!r} split {split!r}")
    overlap = frame.loc[frame["problem_id"].astype(str).isin(exclude_ids), "problem_id"].tolist()
    if overlap:
        raise InputError(f"task {dataset!r} split {split!r}: {len(overlap)} problem(s) are also in the excluded "
                         f"set(s), e.g. {overlap[0]!r}; a test problem must not be a training problem")
    return frame


def write_subset(dataset: str, split: str, num: int | None, seed: int, output: str | Path,
                 exclude: tuple[str | Path, ...] = (), **options) -> pd.DataFrame:
    """Write the subset to ``output``; ``exclude``: problem files (e.g. the training subset)
    whose problems this subset must not contain."""
    exclude_ids = frozenset(pid for path in exclude for pid in read_problems(path)["problem_id"])
    frame = load_problems(dataset, split=split, num=num, seed=seed, exclude_ids=exclude_ids, **options)
    if num is not None and len(frame) < num:
        left_out = f" after leaving out {len(exclude_ids)} excluded problem(s)" if exclude_ids else ""
        raise InputError(f"{dataset} split {split!r}: {num} problems asked for, only {len(frame)} available{left_out}")
    write_parquet(output, frame)
    return frame
