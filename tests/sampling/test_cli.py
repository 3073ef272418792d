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


def _broken_folder(root, kind):
    folder = root / kind
    folder.mkdir()
    if kind == "no-config":
        (folder / "tokenizer.json").write_text("{}")
    elif kind == "no-weights":
        (folder / "config.json").write_text('{"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}')
    return str(folder)


@pytest.mark.parametrize("flag", ["--model", "--checkpoint-path"])
@pytest.mark.parametrize("model, message", [
    ("{tmp}/missing", "{flag} {tmp}/missing: no such model folder (a hub id looks like org/name)"),
    ("no-config", "{flag} {tmp}/no-config: not a model folder (no config.json)"),
    ("no-weights", "{flag} {tmp}/no-weights: cannot load this local folder: Error no file named model.safetensors"),
    ("org/missing", "{flag} org/missing: cannot load this hub id (offline or not on the hub?)"),
])
def test_bad_model_is_one_line_names_the_flag_and_leaves_nothing(flag, model, message, problems, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "test.parquet"
    problems.to_parquet(data)
    if model in ("no-config", "no-weights"):
        model = _broken_folder(tmp_path, model)
    out = tmp_path / "out" / "s.parquet"
    with pytest.raises(SystemExit) as exc:
        cli_main(["sample", flag, model.format(tmp=tmp_path), "--dataset-name", str(data), "--output", str(out),
                  "--backend", "hf"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nsr sample: error: {message.format(flag=flag, tmp=tmp_path)}") and err.count("\n") == 1, err
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no .partial left behind


def test_library_call_with_an_unloadable_model_removes_its_partial(problems, tmp_path):
    from nsr.io import InputError
    from nsr.sampling import sample_to_file

    out = tmp_path / "s.parquet"
    with pytest.raises(InputError, match="cannot load this local folder"):
        sample_to_file(_broken_folder(tmp_path, "no-weights"), problems, out, backend="hf", progress=False)
    assert not out.with_name("s.parquet.partial").exists()


def test_reward_threshold_is_not_a_sampling_setting(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["sample", "--model", str(model_dir), "--output", str(tmp_path / "o.parquet"),
                  "--reward-threshold", "0"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "nsr sample: error: --reward-threshold: not a sampling setting: a sample is correct iff the task's verifier "
        "gives it full credit, so Pass@k never depends on a threshold (the threshold is `nsr train`'s) "
        "(see nsr sample --help)\n")
