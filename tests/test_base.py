import csv

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from nsr import base
from nsr.io import InputError
from nsr.tiny import TinyModelConfig, build_tiny_model, build_tokenizer

TINY = TinyModelConfig(num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                       num_key_value_heads=1, max_position_embeddings=64)


def _state(folder):
    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def test_local_folder_is_saved_as_is(tmp_path):
    tok = build_tokenizer()
    model = build_tiny_model(tok, TINY, seed=1)
    src = tmp_path / "src"
    model.save_pretrained(src)
    tok.save_pretrained(src)
    out = base.prepare_base(str(src), tmp_path / "out")
    loaded = AutoModelForCausalLM.from_pretrained(out)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    text = "A=5 B=7|max? ü"
    assert AutoTokenizer.from_pretrained(out).decode(AutoTokenizer.from_pretrained(out)(text)["input_ids"]) == text
    assert not list(tmp_path.glob(".out.tmp-*"))  # atomic: no temp folder left


def test_missing_or_invalid_folder_is_input_error(tmp_path):
    with pytest.raises(InputError, match="no-such: no such model folder"):
        base.prepare_base(str(tmp_path / "no-such"), tmp_path / "out")
    (tmp_path / "tokenizer-only").mkdir()
    (tmp_path / "tokenizer-only" / "tokenizer.json").write_text("{}")
    with pytest.raises(InputError, match="tokenizer-only: not a model folder"):
        base.prepare_base(str(tmp_path / "tokenizer-only"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_embedded_warm_start_learns_and_is_deterministic(tmp_path):
    kw = dict(seed=5, warmstart_steps=25, warmstart_lr=3e-3, warmstart_batch_size=16, shape=TINY)
    a = base.prepare_base("embedded", tmp_path / "a", **kw)
    b = base.prepare_base("embedded", tmp_path / "b", **kw)
    with open(a / "warmstart_log.csv") as fh:
        losses = [float(r["loss"]) for r in csv.DictReader(fh)]
    assert len(losses) == 25 and sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    sa, sb = _state(a), _state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], v) for k, v in build_tiny_model(build_tokenizer(), TINY, seed=5).state_dict().items())
    tok = AutoTokenizer.from_pretrained(a)
    assert tok.eos_token == "<|endoftext|>" and tok.padding_side == "left"


def test_answer_logprob_matches_sequence_probability():
    tok = build_tokenizer()
    model = build_tiny_model(tok, TINY, seed=0)
    lp = base.answer_logprob(model, tok, ["A=1|max?", "A=1 B=2 C=3|rank?"], ["A", "CBA"])
    # brute force: product of next-token probabilities without padding
    for i, (p, a) in enumerate([("A=1|max?", "A"), ("A=1 B=2 C=3|rank?", "CBA")]):
        ids = tok(p + a)["input_ids"] + [tok.eos_token_id]
        n_prompt = len(tok(p)["input_ids"])
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].log_softmax(-1)
        want = sum(logits[t - 1, ids[t]].item() for t in range(n_prompt, len(ids)))
        assert lp[i].item() == pytest.approx(want, abs=1e-4)


def test_cli_parses_flags():
    import argparse

    parser = argparse.ArgumentParser()
    base.add_arguments(parser)
    args = parser.parse_args(["--output-dir", "x", "--warmstart-steps", "3", "--num-threads", "1"])
    assert (args.model, args.warmstart_steps, args.num_threads, args.dataset_name) == ("embedded", 3, 1, "synthchart")


def test_warm_start_uses_the_study_task_options(tmp_path, monkeypatch):
    seen = {}

    def fake_warm_start(policy, tokenizer, prompts, answers, *args, **kw):
        seen["prompts"] = prompts
        return []

    monkeypatch.setattr(base, "warm_start", fake_warm_start)
    base.prepare_base("embedded", tmp_path / "b", seed=1, warmstart_steps=1, shape=TINY,
                      task_options={"types": "rank", "max_categories": "3"})
    assert seen["prompts"] and all(p.endswith("|rank?") for p in seen["prompts"])
    assert all(p.count("=") <= 3 for p in seen["prompts"])
    with pytest.raises(InputError, match="question types"):
        base.prepare_base("embedded", tmp_path / "c", seed=1, warmstart_steps=1, shape=TINY,
                          task_options={"types": "median"})
    assert not (tmp_path / "c").exists()


def test_noisy_teacher_warm_start_gives_a_well_formed_uncertain_prior(tmp_path):
    """The design the embedded default relies on (issue 10): after a noisy-teacher warm-start the base
    answers in the right form (>= 95% well formed) but is unsure of the content (Pass@1 well below 1,
    several distinct answers per problem). Fails if the warm-start or the teacher regresses."""
    from nsr.data import load_problems
    from nsr.forms import classify, summarize
    from nsr.sampling import SamplingSettings, sample_to_file

    options = {"types": "max,min", "max_categories": "4", "value_range": "10,99", "shuffle_labels": "false"}
    out = base.prepare_base("embedded", tmp_path / "base", seed=3, warmstart_steps=250, warmstart_lr=1e-3,
                            warmstart_batch_size=32, task_options=options, teacher_accuracy=0.3, teacher_noise=0.3,
                            num_threads=2)
    problems = load_problems("synthchart", "test", 30, seed=1, **options)
    samples = sample_to_file(out, problems, tmp_path / "samples.parquet", SamplingSettings(32, 1.0, 1.0, 8, 0),
                             backend="hf", problems_per_call=10, num_threads=2, progress=False)
    forms = summarize(classify(problems, samples.assign(run="seed0"))).set_index("question_type")
    assert (forms["well_formed"] >= 0.95).all(), forms
    assert (0.15 <= forms.loc["all", "correct"] <= 0.5), forms  # the teacher's 30%, learned roughly
    assert forms.loc["all", "distinct_answers"] >= 2.5, forms  # wrong answers spread over several labels


def test_noisy_teacher_needs_synthchart_rows(tmp_path):
    problems = tmp_path / "p.parquet"
    import pandas as pd

    pd.DataFrame({"problem_id": ["a"], "prompt": ["1+1?"], "answer": ["2"]}).to_parquet(problems)
    with pytest.raises(InputError, match="synthchart problems only"):
        base.prepare_base("embedded", tmp_path / "b", dataset_name=str(problems), warmstart_steps=1, shape=TINY,
                          teacher_accuracy=0.5)
    with pytest.raises(InputError, match=r"teacher_accuracy: must be in \[0, 1\], got 1.5"):
        base.prepare_base("embedded", tmp_path / "b", warmstart_steps=1, shape=TINY, teacher_accuracy=1.5)
    with pytest.raises(InputError, match=r"warm-start phase 2.learning_rate: must be > 0, got '-1'"):
        base.prepare_base("embedded", tmp_path / "b", shape=TINY, phases=[{"steps": 1}, {"learning_rate": "-1"}])
    with pytest.raises(InputError, match="warm-start phase 1.blind_spot: 'blind' is not one of"):
        base.prepare_base("embedded", tmp_path / "b", shape=TINY, phases=[{"blind_spot": "blind"}])
    with pytest.raises(InputError, match="synthchart problems only"):
        base.prepare_base("embedded", tmp_path / "b", dataset_name=str(problems), shape=TINY,
                          phases=[{"steps": 1}, {"steps": 1, "blind_spot": "last_unseen"}])
    assert not (tmp_path / "b").exists()


def _log(folder):
    with open(folder / "warmstart_log.csv") as fh:
        return list(csv.DictReader(fh))


def test_one_phase_is_the_flat_warm_start(tmp_path):
    """A phase without settings of its own is the flat settings: bit-identical weights (teacher included)."""
    flat = dict(warmstart_steps=6, warmstart_lr=2e-3, warmstart_batch_size=8, teacher_accuracy=0.5,
                teacher_noise=0.3, teacher_decay=0.9)
    a = base.prepare_base("embedded", tmp_path / "a", seed=4, shape=TINY, **flat)
    b = base.prepare_base("embedded", tmp_path / "b", seed=4, shape=TINY, phases=[{}], **flat)
    c = base.prepare_base("embedded", tmp_path / "c", seed=4, shape=TINY,
                          phases=[{"steps": 6, "learning_rate": 2e-3, "batch_size": 8, "teacher_accuracy": 0.5,
                                   "teacher_decay": 0.9}])
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() == (c / "model.safetensors").read_bytes()
    assert [r["phase"] for r in _log(a)] == ["1"] * 6


def test_phases_run_in_order_each_with_its_learning_rate(tmp_path):
    """Two phases: steps counted over both, the log's phase column, a fresh warmup + cosine schedule per
    phase peaking at that phase's learning rate, and the second phase starting from the first's weights."""
    phases = [{"steps": 8, "learning_rate": 4e-3}, {"steps": 5, "learning_rate": 1e-4, "batch_size": 4,
                                                    "teacher_accuracy": 0.6, "blind_spot": "last_unseen",
                                                    "blind_spot_escape": 0.02}]
    out = base.prepare_base("embedded", tmp_path / "two", seed=2, shape=TINY, phases=phases,
                            task_options={"types": "max,min", "value_range": "10,99"})
    log = _log(out)
    assert [int(r["step"]) for r in log] == list(range(1, 14))
    assert [r["phase"] for r in log] == ["1"] * 8 + ["2"] * 5
    first, second = [float(r["lr"]) for r in log[:8]], [float(r["lr"]) for r in log[8:]]
    assert first[0] == second[0] == 0.0  # each phase warms up afresh
    assert max(first) == pytest.approx(4e-3) and max(second) == pytest.approx(1e-4)
    one = base.prepare_base("embedded", tmp_path / "one", seed=2, shape=TINY, phases=phases[:1],
                            task_options={"types": "max,min", "value_range": "10,99"})
    assert [r["loss"] for r in _log(one)] == [r["loss"] for r in log[:8]]  # phase 1 is unchanged by a phase 2
    assert (one / "model.safetensors").read_bytes() != (out / "model.safetensors").read_bytes()


def test_cli_phases_are_repeatable_key_value_flags():
    import argparse

    from nsr.warmstart import parse_phase_flag

    parser = argparse.ArgumentParser()
    base.add_arguments(parser)
    args = parser.parse_args(["--output-dir", "x", "--warmstart-phase", "steps=6000",
                              "--warmstart-phase", "steps=600,learning_rate=3e-4,blind_spot=last_unseen"])
    assert [parse_phase_flag(p) for p in args.warmstart_phase] == [
        {"steps": "6000"}, {"steps": "600", "learning_rate": "3e-4", "blind_spot": "last_unseen"}]
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_phase_flag("steps=6,600")


def test_base_prior_reports_exact_pass_at_1_chance_and_fragile_shares(tmp_path):
    import json
    import math

    from nsr.base_prior import per_problem, summarize
    from nsr.data import load_problems

    options = {"types": "max,rank,sum", "value_range": "10,99", "max_categories": "4"}
    out = base.prepare_base("embedded", tmp_path / "b", seed=1, warmstart_steps=3, shape=TINY, task_options=options)
    problems = load_problems("synthchart", "test", 12, seed=1, **options)
    rows = per_problem(out, problems, (10, 99), num_threads=1)
    n = [len(json.loads(t)["values"]) for t in problems["table"]]
    want = {"max": lambda k: 1 / k, "rank": lambda k: 1 / math.factorial(k), "sum": lambda k: 1 / 177}
    assert list(rows["chance"]) == pytest.approx([want[q](k) for q, k in zip(problems["question_type"], n)])
    assert ((rows["exact_p"] > 0) & (rows["exact_p"] < 1)).all()
    table = summarize(rows.assign(exact_p=[0.5, 0.03, 0.001] * 4)).set_index("question_type")
    assert table.loc["all", "problems"] == 12 and table.loc["all", "exact_pass_at_1"] == pytest.approx(17.7)
    assert table.loc["all", "fragile_5"] == pytest.approx(200 / 3) and table.loc["all", "fragile_1"] == pytest.approx(100 / 3)


def test_base_prior_card_samples_as_the_study_does(tmp_path):
    """sample_card draws one samples file per seed (the sample rule's settings) and reads them as the
    study's base card does; the files are reused on a second call."""
    import pandas as pd

    from nsr.base_card import base_card
    from nsr.base_prior import sample_card
    from nsr.data import load_problems
    from nsr.sampling import SamplingSettings, sample_to_file

    out = base.prepare_base("embedded", tmp_path / "b", seed=1, warmstart_steps=3, shape=TINY)
    problems = load_problems("synthchart", "test", 5, seed=1)
    sampling = {"num_samples": 4, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 6, "problems_per_call": 2}
    card = sample_card(out, problems, tmp_path / "p" / "test.parquet", tmp_path / "p" / "samples", [7, 8], sampling,
                       "mixed", num_threads=1)
    files = sorted((tmp_path / "p" / "samples" / "base").glob("seed*.parquet"))
    assert [f.name for f in files] == ["seed7.parquet", "seed8.parquet"]
    # the study's sample job for seed 7, drawn independently, gives the same file
    again = sample_to_file(out, problems, tmp_path / "study.parquet", SamplingSettings(4, 1.0, 1.0, 6, 7), backend="hf",
                           problems_per_call=2, num_threads=1, progress=False)
    assert list(again["completion"]) == list(pd.read_parquet(files[0])["completion"])
    assert card.equals(base_card([("mixed", tmp_path / "p" / "test.parquet", files)]))
    mtimes = [f.stat().st_mtime_ns for f in files]
    sample_card(out, problems, tmp_path / "p" / "test.parquet", tmp_path / "p" / "samples", [7, 8], sampling, "mixed")
    assert [f.stat().st_mtime_ns for f in files] == mtimes


def test_nsr_base_builds_a_loadable_base_with_the_difficulty_teacher_and_the_coarse_blind_spot(tmp_path):
    """`nsr base` with the new teacher settings as flags: clean steps, then the difficulty teacher with the
    coarse blind spot (a phase's keys over the flat `--warmstart-*` ones); the folder loads and samples."""
    from nsr import cli

    out = tmp_path / "base"
    cli.main(["base", "--output-dir", str(out), "--seed", "3", "--num-threads", "1", "--warmstart-batch-size", "4",
              "--warmstart-teacher-hard-accuracy", "0.05", "--warmstart-teacher-systematic", "0.8",
              "--warmstart-phase", "steps=3",
              "--warmstart-phase", "steps=2,learning_rate=3e-4,teacher_accuracy=0.9,teacher_difficulty=gap,"
                                   "teacher_hard_gap=1,teacher_easy_gap=8,blind_spot=coarse,blind_spot_escape=0.1",
              "--option", "value_range=10,99", "--option", "max_categories=5"])
    assert [r["phase"] for r in _log(out)] == ["1"] * 3 + ["2"] * 2
    model, tok = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    ids = tok(["A=15 B=18 C=60|max?"], return_tensors="pt")
    assert model.generate(**ids, max_new_tokens=2, do_sample=False).shape[1] > ids["input_ids"].shape[1]


def test_a_teacher_with_nothing_to_act_on_is_refused_before_training(tmp_path):
    with pytest.raises(InputError, match="warm-start phase 2.teacher_difficulty: gap acts on order questions"):
        base.prepare_base("embedded", tmp_path / "b", shape=TINY, task_options={"types": "sum,lookup"},
                          phases=[{"steps": 1}, {"steps": 1, "teacher_difficulty": "gap"}])
    with pytest.raises(InputError, match="warm-start.blind_spot: coarse acts on order questions"):
        base.prepare_base("embedded", tmp_path / "b", shape=TINY, warmstart_steps=1, blind_spot="coarse",
                          task_options={"types": "diff"})
    assert not (tmp_path / "b").exists()


def test_the_schema_knows_every_phase_setting():
    """base.warmstart keys in workflow/schemas/config.schema.yaml are nsr.warmstart.PHASE_KEYS, with the
    same named values; every flat setting has a help line."""
    from pathlib import Path

    import yaml

    from nsr.warmstart import CHOICES, PHASE_KEYS

    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    phase = schema["$defs"]["warmstart_phase"]["properties"]
    assert list(phase) == list(PHASE_KEYS)
    assert {key: tuple(phase[key]["enum"]) for key in CHOICES} == CHOICES
    assert set(PHASE_KEYS) - {"steps", "learning_rate", "batch_size"} <= set(base.FLAT_HELP)
