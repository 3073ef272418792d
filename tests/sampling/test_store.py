"""nsr.sampling.store: samples file schema, determinism, resume after a kill, stale partials, bad input."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from nsr.io import InputError
from nsr.rewards import extract_answer
from nsr.sampling import SAMPLE_COLUMNS, SamplingSettings, backends, problem_seed, sample_to_file

_REAL_SAMPLE = backends.HFSampler.sample


def test_sample_to_file_schema_and_determinism(model_dir, problems, tmp_path):
    settings = SamplingSettings(num_samples=4, max_new_tokens=6, seed=3)
    frame = sample_to_file(model_dir, problems, tmp_path / "a.parquet", settings, backend="hf", problems_per_call=2, progress=False)
    assert list(frame.columns) == list(SAMPLE_COLUMNS)
    assert len(frame) == len(problems) * 4
    assert list(frame["problem_id"].unique()) == list(problems["problem_id"])
    assert frame.groupby("problem_id")["sample_idx"].apply(list).map(lambda v: v == [0, 1, 2, 3]).all()
    assert (frame["correct"] == (frame["reward"] == 1.0)).all()
    assert (frame["extracted"] == frame["completion"].map(extract_answer)).all()
    assert (frame["answer"] == frame["problem_id"].map(dict(zip(problems["problem_id"], problems["answer"])))).all()
    on_disk = pd.read_parquet(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(on_disk, frame)
    assert on_disk.attrs["nsr_sampling"]["seed"] == 3
    assert not (tmp_path / "a.parquet.partial").exists()
    # Same seed -> same file, whatever the chunking; another seed -> other samples.
    again = sample_to_file(model_dir, problems, tmp_path / "b.parquet", settings, backend="hf", problems_per_call=5, progress=False)
    pd.testing.assert_frame_equal(again, frame)
    other = sample_to_file(model_dir, problems, tmp_path / "c.parquet", SamplingSettings(4, max_new_tokens=6, seed=4), backend="hf", progress=False)
    assert not other["completion"].equals(frame["completion"])


def _kill_on_call(monkeypatch, call: int) -> list[int]:
    """Make HFSampler.sample raise (a simulated kill) on its ``call``-th use; returns the call log."""
    calls = []

    def sample(self, prompts, seeds, settings):
        calls.append(len(prompts))
        if len(calls) == call:
            raise KeyboardInterrupt("simulated kill")
        return _REAL_SAMPLE(self, prompts, seeds, settings)

    monkeypatch.setattr(backends.HFSampler, "sample", sample)
    return calls


def test_interrupted_then_resumed_run_equals_uninterrupted(model_dir, problems, tmp_path, monkeypatch):
    settings = SamplingSettings(num_samples=3, max_new_tokens=5, seed=1)
    reference = sample_to_file(model_dir, problems, tmp_path / "ref.parquet", settings, backend="hf", problems_per_call=2, progress=False)

    calls = _kill_on_call(monkeypatch, 2)
    out = tmp_path / "run.parquet"
    with pytest.raises(KeyboardInterrupt):
        sample_to_file(model_dir, problems, out, settings, backend="hf", problems_per_call=2, progress=False)
    assert not out.exists()
    assert len(list((tmp_path / "run.parquet.partial").glob("chunk-*.parquet"))) == 1

    calls = _kill_on_call(monkeypatch, 0)  # 0: never kill, just log the calls
    resumed = sample_to_file(model_dir, problems, out, settings, backend="hf", problems_per_call=2, progress=False)
    assert calls == [2, 1]  # only the 3 unfinished problems were sampled
    pd.testing.assert_frame_equal(resumed, reference)
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tmp_path / "ref.parquet"))
    assert not (tmp_path / "run.parquet.partial").exists()


def test_changed_settings_discard_stale_partials(model_dir, problems, tmp_path, monkeypatch):
    settings = SamplingSettings(num_samples=2, max_new_tokens=4, seed=1)
    out = tmp_path / "s.parquet"
    _kill_on_call(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        sample_to_file(model_dir, problems, out, settings, backend="hf", progress=False)
    _kill_on_call(monkeypatch, 0)
    other = SamplingSettings(num_samples=2, max_new_tokens=4, seed=2)
    frame = sample_to_file(model_dir, problems, out, other, backend="hf", progress=False)
    fresh = sample_to_file(model_dir, problems, tmp_path / "fresh.parquet", other, backend="hf", progress=False)
    pd.testing.assert_frame_equal(frame, fresh)


def test_bad_settings_are_input_errors(model_dir, problems, tmp_path):
    for settings in (SamplingSettings(num_samples=0), SamplingSettings(top_p=0.0), SamplingSettings(temperature=-1)):
        with pytest.raises(InputError):
            sample_to_file(model_dir, problems, tmp_path / "x.parquet", settings, backend="hf", progress=False)
    with pytest.raises(InputError, match="answer"):
        sample_to_file(model_dir, problems.drop(columns="answer"), tmp_path / "x.parquet", backend="hf", progress=False)


def test_per_problem_seeds_at_the_file_level(model_dir, problems, tmp_path):
    """A problem's samples in the file depend on (seed, problem_id) only: sampled alone or among others,
    first or not, they are the same, and they are what its documented seed problem_seed(seed, id) draws."""
    settings = SamplingSettings(num_samples=6, max_new_tokens=6, seed=5)
    target = problems.iloc[[3]].reset_index(drop=True)  # not first among the others
    alone = sample_to_file(model_dir, target, tmp_path / "alone.jsonl", settings, backend="hf", progress=False)
    together = sample_to_file(model_dir, problems, tmp_path / "together.json", settings, backend="hf",
                              problems_per_call=len(problems), progress=False)
    from nsr.sampling.formats import read_samples_table

    alone_file = read_samples_table(tmp_path / "alone.jsonl")
    together_file = read_samples_table(tmp_path / "together.json")
    mine = together_file[together_file["problem_id"] == target["problem_id"][0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone_file, mine)
    assert alone_file["completion"].nunique() > 1  # real sampling, not one repeated string
    sampler = backends.HFSampler(model_dir)
    seeded = sampler.sample(list(target["prompt"]), [problem_seed(5, target["problem_id"][0])], settings)[0]
    assert list(alone["completion"]) == seeded
    # the same prompt under another problem_id draws other samples: the seed is per problem, not per call
    twin = pd.concat([target, target.assign(problem_id="twin")], ignore_index=True)
    both = sample_to_file(model_dir, twin, tmp_path / "twin.parquet", settings, backend="hf", problems_per_call=2,
                          progress=False)
    assert list(both["completion"][:6]) == seeded and list(both["completion"][6:]) != seeded


@pytest.mark.parametrize("name", ["s.json", "s.jsonl", "s.parquet"])
def test_output_format_follows_the_name_and_reads_back_by_content(model_dir, problems, tmp_path, name):
    import json

    from nsr.sampling.formats import read_samples_table

    settings = SamplingSettings(num_samples=2, max_new_tokens=4, seed=0)
    frame = sample_to_file(model_dir, problems, tmp_path / name, settings, backend="hf", progress=False)
    path = tmp_path / name
    if name.endswith(".json"):
        records = json.loads(path.read_text())  # the seed guide's samples JSON: a list of records
        assert isinstance(records, list) and len(records) == len(frame)
        assert set(records[0]) == set(SAMPLE_COLUMNS) and isinstance(records[0]["correct"], bool)
    elif name.endswith(".jsonl"):
        assert [json.loads(line)["sample_idx"] for line in path.read_text().splitlines()] == list(frame["sample_idx"])
    else:
        assert path.read_bytes()[:4] == b"PAR1"
    renamed = tmp_path / "renamed.dat"  # the reader trusts the content, not the name
    renamed.write_bytes(path.read_bytes())
    pd.testing.assert_frame_equal(read_samples_table(renamed), frame, check_dtype=False)


def test_unknown_output_suffix_fails_before_sampling(model_dir, problems, tmp_path, monkeypatch):
    monkeypatch.setattr(backends, "make_sampler", lambda *a, **k: pytest.fail("loaded a model"))
    with pytest.raises(InputError, match=r"\.json / \.jsonl / \.parquet"):
        sample_to_file(model_dir, problems, tmp_path / "samples.csv", backend="hf", progress=False)


def test_graded_problems_score_partial_credit_but_count_only_full_credit():
    from nsr.sampling.store import score_rows

    graded = pd.DataFrame({"problem_id": ["r", "n", "l", "b"], "prompt": ["x"] * 4, "answer": ["ABCD", "40", "A", "40"],
                           "credit": ["ranking", "graded", "binary", "binary"]})
    completions = [["ABCD", "ABDC"], ["40", "30"], ["A", "B"], ["40", "30"]]
    frame = score_rows(graded.drop(columns="credit").iloc[3:], completions[3:])  # no credit column: binary
    assert list(frame["reward"]) == [1.0, 0.0]
    frame = score_rows(graded, completions)
    assert list(frame["reward"]) == [1.0, 0.5, 1.0, 0.75, 1.0, 0.0, 1.0, 0.0]
    assert list(frame["correct"]) == [True, False] * 4  # Pass@k counts full credit only


def test_correct_is_full_credit_whatever_the_reward(model_dir, problems, tmp_path, monkeypatch):
    """Partial credit (a graded reward below 1) is never a correct sample: Pass@k counts full credit only."""
    import nsr.rewards

    monkeypatch.setattr(nsr.rewards, "score", lambda completion, answer, *scoring: 0.99 if len(completion) % 2 else 1.0)
    frame = sample_to_file(model_dir, problems, tmp_path / "g.parquet", SamplingSettings(num_samples=6, max_new_tokens=5),
                           backend="hf", progress=False)
    assert set(frame["reward"]) == {0.99, 1.0}
    assert (frame["correct"] == (frame["completion"].str.len() % 2 == 0)).all()


def test_same_model_copied_gives_the_same_bytes_and_resumes(model_dir, problems, tmp_path, monkeypatch):
    """The model is identified by its files' content: a copy (new path, new modification times,
    a different training log) resumes the same partial samples and writes a byte-identical file."""
    settings = SamplingSettings(num_samples=3, max_new_tokens=5, seed=1)
    reference = tmp_path / "ref.parquet"
    sample_to_file(model_dir, problems, reference, settings, backend="hf", problems_per_call=2, progress=False)

    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)  # new modification times
    (copy / "train_log.csv").write_text("step,seconds\n1,0.5\n")  # wall times differ between equal runs
    out = tmp_path / "run.parquet"
    _kill_on_call(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        sample_to_file(model_dir, problems, out, settings, backend="hf", problems_per_call=2, progress=False)
    calls = _kill_on_call(monkeypatch, 0)
    sample_to_file(copy, problems, out, settings, backend="hf", problems_per_call=2, progress=False)
    assert calls == [2, 1]  # the copy resumed the original's partial samples
    assert out.read_bytes() == reference.read_bytes()

    # other weights: the partial samples are not reused
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + bytes([weights.read_bytes()[-1] ^ 1]))
    _kill_on_call(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        sample_to_file(model_dir, problems, tmp_path / "x.parquet", settings, backend="hf", problems_per_call=2,
                       progress=False)
    calls = _kill_on_call(monkeypatch, 0)
    sample_to_file(copy, problems, tmp_path / "x.parquet", settings, backend="hf", problems_per_call=2, progress=False)
    assert calls == [2, 2, 1]  # started over
