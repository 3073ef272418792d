"""`nsr sample` (nsr.sampling.cli): the seed guide's flags, bad problem files."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from nsr.cli import main as cli_main


def test_cli_with_seed_guide_flags(model_dir, problems, tmp_path, capsys):
    data = tmp_path / "test.parquet"
    problems.to_parquet(data)
    out = tmp_path / "samples.parquet"
    threads = torch.get_num_threads()
    try:
        cli_main(["sample", "--checkpoint-path", str(model_dir), "--dataset-name", str(data), "--output-path", str(out),
                  "--num-samples", "2", "--max-new-tokens", "4", "--backend", "hf", "--subset-size", "3", "--num-threads", "1"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    frame = pd.read_parquet(out)
    assert len(frame) == 3 * 2 and frame["problem_id"].nunique() == 3
    assert "wrote 6 samples" in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"not a parquet file", None])
def test_bad_problem_file_names_it(model_dir, tmp_path, capsys, content):
    bad = tmp_path / "bad.parquet"
    if content is None:
        pd.DataFrame({"problem_id": ["a"], "prompt": ["x"]}).to_parquet(bad)  # no answer column
    else:
        bad.write_bytes(content)
    with pytest.raises(SystemExit) as exc:
        cli_main(["sample", "--model", str(model_dir), "--dataset-name", str(bad), "--output", str(tmp_path / "o.parquet"), "--backend", "hf"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(bad) in err and ("answer" in err if content is None else "not a readable parquet" in err)


def test_cli_unknown_output_suffix_names_the_flag_before_loading(model_dir, tmp_path, capsys, monkeypatch):
    from nsr.sampling import backends

    monkeypatch.setattr(backends, "make_sampler", lambda *a, **k: pytest.fail("loaded a model"))
    for flag in ("--output-path", "--output"):
        with pytest.raises(SystemExit) as exc:
            cli_main(["sample", "--checkpoint-path", str(model_dir), "--dataset-name", "synthchart",
                      flag, str(tmp_path / "samples_nsr.txt"), "--num-samples", "2"])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"{flag} {tmp_path / 'samples_nsr.txt'}:" in err and ".json / .jsonl / .parquet" in err
    assert not list(tmp_path.iterdir())


def test_cli_option_reaches_the_task(model_dir, tmp_path):
    out = tmp_path / "samples.jsonl"
    cli_main(["sample", "--checkpoint-path", str(model_dir), "--dataset-name", "synthchart", "--subset-size", "3",
              "--option", "types=rank", "--option", "credit=graded", "--output-path", str(out),
              "--num-samples", "2", "--max-new-tokens", "4", "--backend", "hf"])
    from nsr.data import load_problems
    from nsr.sampling.formats import read_samples_table

    frame = read_samples_table(out)
    problems = load_problems("synthchart", split="test", num=3, seed=2025, types="rank")
    assert list(frame["problem_id"].unique()) == list(problems["problem_id"])
