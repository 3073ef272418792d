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

    def fake_warm_start(policy, tokenizer, prompts, answers, **kw):
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
    with pytest.raises(InputError, match="teacher-accuracy"):
        base.prepare_base("embedded", tmp_path / "b", warmstart_steps=1, shape=TINY, teacher_accuracy=1.5)
    assert not (tmp_path / "b").exists()
