"""Samples files: written in the format the file name says, read in the format the content says.

    .json     the seed guide's samples JSON: a list of records, one per sample
              ({"problem_id", "sample_idx", "completion", "extracted", "answer", "reward", "correct"})
    .jsonl    the same records as JSON lines
    .parquet  the same columns as a Parquet table (the study's own files)

Reading ignores the suffix: Parquet is recognised by its magic bytes, anything else must be a
JSON list of records (or an object holding one under "samples") or JSON lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from nsr.io import InputError, atomic_path

SAMPLE_FORMATS = {".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
_PARQUET_MAGIC = b"PAR1"


def samples_format(path: str | Path) -> str:
    """The format a samples file is written in, from its suffix; InputError for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in SAMPLE_FORMATS:
        raise InputError(f"{path}: a samples file must end in {' / '.join(SAMPLE_FORMATS)} "
                         f"(the format follows the name), got {suffix or 'no suffix'}")
    return SAMPLE_FORMATS[suffix]


def write_samples(path: str | Path, frame: pd.DataFrame) -> None:
    """Write the samples table atomically, in the format of ``path``'s suffix."""
    fmt = samples_format(path)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
            return
        lines = [json.dumps(record) for record in frame.to_dict("records")]
        # One record per line in both JSON forms: a list that diffs and greps like JSON lines.
        tmp.write_text("[\n" + ",\n".join(lines) + "\n]\n" if fmt == "json" else "".join(f"{line}\n" for line in lines))


def read_samples_table(path: str | Path) -> pd.DataFrame:
    """The rows of a samples file, whatever its name says; InputError if it is no samples table."""
    path = Path(path)
    with path.open("rb") as f:
        if f.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC:
            return pd.read_parquet(path)
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text)
    except json.JSONDecodeError:  # JSON lines (or broken JSON: the line parse names the problem)
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(rows, dict):
        # {"samples": [...]}, or a JSON lines file of a single record
        rows = rows["samples"] if isinstance(rows.get("samples"), list) else [rows] if "problem_id" in rows else rows
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"{path}: expected a JSON list of objects (or JSON lines), one per sample")
    return pd.DataFrame(rows)
