"""Scoring and the resumable chunk store behind `nsr sample` (sample_to_file).

Finished problems go to ``<output>.partial/chunk-XXXXX.parquet`` (each written atomically); a
re-run with the same settings, model files and problems skips them; the final samples file
(format by its suffix, nsr.sampling.formats) appears atomically once every problem is done, and
the partial store is then removed. A run that fails on bad input (InputError: a model that cannot
be loaded, images without a processor) removes the partial store it created.

A sample is ``correct`` iff the task's verifier gives it full credit (nsr.rewards.full_credit),
whatever the problem's ``credit`` grades as partial: Pass@k depends on the model and the sampling
settings only, never on a training threshold. The model is identified by the content of its files
(not their path or modification time), so the same model, copied elsewhere, resumes the same
partial samples and writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from nsr.io import InputError, write_json, write_parquet
from nsr.model_source import loading, model_source_error
from nsr.sampling.backends import SamplingSettings, make_sampler, resolve_backend
from nsr.sampling.decoding import plain_prompt, problem_seed
from nsr.sampling.formats import samples_format, write_samples

SAMPLE_COLUMNS = ("problem_id", "sample_idx", "completion", "extracted", "answer", "reward", "correct")


def score_rows(problems: pd.DataFrame, completions: Sequence[Sequence[str]]) -> pd.DataFrame:
    """One row per sample: reward as the problem's ``credit`` and ``numeric_match`` score it, correct =
    full credit (the task's own accuracy, what Pass@k counts), whatever a training threshold was."""
    from nsr.rewards import extract_answer, full_credit, row_scoring, score

    records = []
    for problem_id, answer, scoring, samples in zip(problems["problem_id"], problems["answer"], row_scoring(problems),
                                                    completions):
        scored = {}  # a problem's samples repeat (short answers, many samples): score each distinct text once
        for idx, text in enumerate(samples):
            if text not in scored:
                reward = float(score(text, answer, *scoring))
                scored[text] = (extract_answer(text), reward, full_credit(reward))
            extracted, reward, correct = scored[text]
            records.append((problem_id, idx, text, extracted, answer, reward, correct))
    frame = pd.DataFrame.from_records(records, columns=list(SAMPLE_COLUMNS))
    return frame.astype({"problem_id": str, "sample_idx": "int64", "reward": "float64", "correct": bool})


def _model_fingerprint(model_dir: str | Path) -> str:
    """A hash of the model folder's file names and contents, so a retrained model never reuses old
    partials while a copy of the same model does. Training logs (*.csv: train_log.csv holds wall
    times) are left out: they do not change what the model samples."""
    path = Path(model_dir)
    if not path.is_dir():
        return str(model_dir)  # a hub id: its name is all we have
    digest = hashlib.sha256()
    for file in sorted(f for f in path.rglob("*") if f.is_file() and f.suffix != ".csv"):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as stream:
            digest.update(hashlib.file_digest(stream, "sha256").digest())
    return digest.hexdigest()[:16]


def _problem_fingerprint(problems: pd.DataFrame) -> str:
    # credit and numeric_match change the rewards, so partials scored under others are not reused
    from nsr.rewards import row_scoring

    text = json.dumps([[str(r.problem_id), str(r.answer), repr(plain_prompt(r.prompt)), *scoring]
                       for r, scoring in zip(problems.itertuples(), row_scoring(problems))])
    digest = hashlib.sha256(text.encode())
    for image in problems["image"] if "image" in problems.columns else ():
        digest.update(_image_bytes(image))
    return digest.hexdigest()[:16]


def _image_bytes(image: Any) -> bytes:
    if isinstance(image, dict):
        image = image.get("bytes")
    return bytes(image) if isinstance(image, (bytes, bytearray)) else repr(image).encode()


def _validate_problems(problems: pd.DataFrame) -> pd.DataFrame:
    from nsr.data import validate_rows

    problems = validate_rows(problems.reset_index(drop=True), "problem set").copy()
    problems["problem_id"] = problems["problem_id"].astype(str)
    problems["answer"] = problems["answer"].astype(str)
    if "image" in problems.columns:
        if problems["image"].notna().any() and problems["image"].isna().any():
            missing = problems.loc[problems["image"].isna(), "problem_id"].iloc[0]
            raise InputError(f"problem set: column 'image' is missing for problem {missing!r} (all or none need one)")
        if problems["image"].isna().all():
            problems = problems.drop(columns="image")
    return problems


def sample_to_file(
    model_dir: str | Path,
    problems: pd.DataFrame,
    output: str | Path,
    settings: SamplingSettings = SamplingSettings(),
    *,
    backend: str = "auto",
    problems_per_call: int | None = None,
    num_threads: int | None = None,
    progress: bool = True,
    model_flag: str = "--model",
) -> pd.DataFrame:
    """Sample, score and write the samples file; resumes from ``<output>.partial``. Returns the frame.
    Errors about the model name ``model_flag``, the option the caller took ``model_dir`` from."""
    samples_format(output)  # an unknown suffix fails before any model is loaded
    settings.validate()
    problems = _validate_problems(problems)
    error = model_source_error(str(model_dir))
    if error:
        raise InputError(f"{model_flag} {error}")
    if "image" in problems.columns and Path(model_dir).is_dir():
        from nsr.vlm import PROCESSOR_FILES

        if not any((Path(model_dir) / name).exists() for name in PROCESSOR_FILES):
            raise InputError(f"{model_flag} {model_dir}: the problems have images but the folder has no processor config "
                             f"({' / '.join(PROCESSOR_FILES)}); use a vision-language model or render the task as text")
    backend = resolve_backend(backend)
    if problems_per_call is None:
        problems_per_call = 32 if backend == "vllm" else 1
    if problems_per_call < 1:
        raise InputError(f"--problems-per-call must be >= 1, got {problems_per_call}")
    output = Path(output)
    partial = output.with_name(output.name + ".partial")
    meta = {
        **asdict(settings),
        "backend": backend,
        "model_fingerprint": _model_fingerprint(model_dir),
        "problems_fingerprint": _problem_fingerprint(problems),
    }
    if partial.exists() and _read_meta(partial) != meta:
        print(f"nsr sample: settings changed since {partial} was written; starting over", file=sys.stderr)
        shutil.rmtree(partial)
    created = not partial.exists()
    partial.mkdir(parents=True, exist_ok=True)
    try:
        write_json(partial / "meta.json", meta)
        _sample_missing(model_dir, problems, partial, settings, backend, problems_per_call, num_threads, progress,
                        model_flag)
    except InputError:
        if created:  # nothing of this run is worth resuming
            shutil.rmtree(partial, ignore_errors=True)
        raise

    frame = pd.concat([pd.read_parquet(c) for c in sorted(partial.glob("chunk-*.parquet"))], ignore_index=True)
    order = {pid: i for i, pid in enumerate(problems["problem_id"])}
    frame = frame[frame["problem_id"].isin(order)]
    frame = frame.sort_values(["problem_id", "sample_idx"], key=lambda col: col.map(order) if col.name == "problem_id" else col)
    frame = frame.reset_index(drop=True)
    if frame["problem_id"].nunique() != len(problems) or len(frame) != len(problems) * settings.num_samples:
        raise RuntimeError(f"{partial}: partial store is inconsistent ({len(frame)} rows); delete it and re-run")
    frame.attrs = {"nsr_sampling": meta}  # pandas keeps attrs in the parquet metadata
    write_samples(output, frame)
    shutil.rmtree(partial)
    return frame


def _sample_missing(model_dir, problems: pd.DataFrame, partial: Path, settings: SamplingSettings, backend: str,
                    problems_per_call: int, num_threads: int | None, progress: bool, model_flag: str) -> None:
    """Sample and score the problems without a chunk in ``partial`` yet, one chunk per call."""
    from tqdm.auto import tqdm

    chunks = sorted(partial.glob("chunk-*.parquet"))
    done = {pid for chunk in chunks for pid in pd.read_parquet(chunk, columns=["problem_id"])["problem_id"]}
    todo = problems[~problems["problem_id"].isin(done)]
    next_chunk = len(chunks) and int(chunks[-1].stem.split("-")[1]) + 1
    if not len(todo):
        return
    with loading(str(model_dir), model_flag):
        sampler = make_sampler(backend, model_dir, settings.seed, num_threads)
    bar = tqdm(total=len(problems), initial=len(problems) - len(todo), unit="problem", file=sys.stderr,
               disable=not progress)
    start, drawn = time.perf_counter(), 0
    for begin in range(0, len(todo), problems_per_call):
        batch = todo.iloc[begin : begin + problems_per_call]
        seeds = [problem_seed(settings.seed, pid) for pid in batch["problem_id"]]
        images = {"images": list(batch["image"])} if "image" in batch.columns else {}
        completions = sampler.sample(list(batch["prompt"]), seeds, settings, **images)
        write_parquet(partial / f"chunk-{next_chunk:05d}.parquet", score_rows(batch, completions))
        next_chunk += 1
        drawn += len(batch) * settings.num_samples
        bar.set_postfix(samples_per_s=f"{drawn / (time.perf_counter() - start):.0f}", refresh=False)
        bar.update(len(batch))
    bar.close()


def _read_meta(partial: Path) -> dict | None:
    try:
        return json.loads((partial / "meta.json").read_text())
    except (OSError, ValueError):
        return None
