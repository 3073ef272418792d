"""NSRTrainer on a tiny model: the real subclass code path with generation fixed to known completions."""

import copy
import csv
import shutil

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM
from trl import GRPOConfig, GRPOTrainer

from nsr.cli import main as cli_main
from nsr.tiny import TinyModelConfig, build_tiny_model, build_tokenizer
from nsr.trainer import NSRConfig, NSRTrainer

SHAPE = TinyModelConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=2,
                        num_key_value_heads=1, max_position_embeddings=64)
# Same-length prompts: left padding is then identical whatever rows share a batch.
PROMPTS = {"A=3 B=7|max?": "B", "A=5 B=2|max?": "A", "A=1 B=9|min?": "A"}
G = 2  # generations per prompt


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def base_model(tok):
    return build_tiny_model(tok, SHAPE, seed=0)


def exact_reward(completions, answer, **_):
    return [float(c.strip() == a) for c, a in zip(completions, answer)]


def graded_reward(completions, answer, **_):
    """Non-binary reward, so grpo equality cannot pass by accident of thresholding."""
    return [0.3 * len(c) % 1.0 + float(c.strip() == a) for c, a in zip(completions, answer)]


def make_trainer(model, tok, tmp_path, objective="grpo", reward=exact_reward, trainer_cls=NSRTrainer, **config):
    defaults = dict(output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, num_generations=G,
                    max_completion_length=8, report_to="none", use_cpu=True, logging_steps=1, save_strategy="no")
    if trainer_cls is NSRTrainer:
        args = NSRConfig(objective=objective, **{**defaults, **config})
    else:
        args = GRPOConfig(bf16=False, gradient_checkpointing=None, activation_checkpointing=False,
                          **{**defaults, **config})
    dataset = Dataset.from_dict({"prompt": list(PROMPTS), "answer": list(PROMPTS.values())})
    trainer = trainer_cls(model=model, reward_funcs=reward, args=args, train_dataset=dataset, processing_class=tok)
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop; we drive single steps
    trainer.model.train()
    return trainer


def score_fixed(trainer, tok, batch):
    """TRL's real scoring path on fixed completions: batch = [(prompt, completion), ...] in groups of G."""
    completion_ids = [tok(c)["input_ids"] + [tok.eos_token_id] for _, c in batch]
    trainer._generate_single_turn = lambda prompt_ids, *a, **k: ([list(ids) for ids in completion_ids], None)
    rows = [{"prompt": p, "answer": PROMPTS[p]} for p, _ in batch]
    return trainer._generate_and_score_completions(rows)


def loss_and_grad(trainer, inputs):
    trainer.model.zero_grad()
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    grad = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                      for p in trainer.model.parameters()])
    return loss.detach(), grad


@torch.no_grad()
def seq_logp(model, tok, prompt, completion):
    """log p(completion + EOS | prompt), computed independently of TRL."""
    p_ids = tok(prompt)["input_ids"]
    c_ids = tok(completion)["input_ids"] + [tok.eos_token_id]
    logits = model(torch.tensor([p_ids + c_ids])).logits[0, len(p_ids) - 1:-1]
    return logits.log_softmax(-1).gather(1, torch.tensor(c_ids)[:, None]).sum().item()


def sgd_step(trainer, inputs, lr=0.05):
    loss_and_grad(trainer, inputs)
    with torch.no_grad():
        for p in trainer.model.parameters():
            if p.grad is not None:
                p -= lr * p.grad


# Two mixed groups: (right, wrong) and (wrong, right); completion lengths differ on purpose.
MIXED = [("A=3 B=7|max?", "B"), ("A=3 B=7|max?", "AB"), ("A=5 B=2|max?", "Bxyz"), ("A=5 B=2|max?", "A")]


def tokens(completions):
    return sum(len(c) + 1 for c in completions)  # byte-level: one token per char, plus EOS


@pytest.mark.parametrize("objective, rewarded", [("nsr", False), ("psr", True)])
def test_one_step_moves_logprob_of_the_reinforced_samples(base_model, tok, tmp_path, objective, rewarded):
    trainer = make_trainer(copy.deepcopy(base_model), tok, tmp_path, objective)
    targets = [(p, c) for p, c in MIXED if (c == PROMPTS[p]) == rewarded]
    before = [seq_logp(trainer.model, tok, p, c) for p, c in targets]
    sgd_step(trainer, score_fixed(trainer, tok, MIXED))
    after = [seq_logp(trainer.model, tok, p, c) for p, c in targets]
    if rewarded:  # PSR raises the log-probability of every rewarded completion
        assert all(a > b + 1e-4 for a, b in zip(after, before)), (before, after)
    else:  # NSR lowers the log-probability of every penalised completion
        assert all(a < b - 1e-4 for a, b in zip(after, before)), (before, after)


def test_w_reinforce_gradient_is_lambda_psr_plus_nsr(base_model, tok, tmp_path):
    lam = 0.3
    grads, counts = {}, {}
    for objective in ("psr", "nsr", "w-reinforce"):
        trainer = make_trainer(copy.deepcopy(base_model), tok, tmp_path, objective, lambda_psr=lam)
        inputs = score_fixed(trainer, tok, MIXED)
        counts[objective] = inputs["num_items_in_batch"].item()
        grads[objective] = loss_and_grad(trainer, inputs)[1]
    # Each loss is a token mean over its kept completions: n_c (correct), n_i (incorrect), n_c + n_i.
    n_c = tokens(c for p, c in MIXED if c == PROMPTS[p])
    n_i = tokens(c for p, c in MIXED if c != PROMPTS[p])
    assert counts == {"psr": n_c, "nsr": n_i, "w-reinforce": n_c + n_i}
    # Undo each normalisation, so all three are token sums: sum_W = lam * sum_PSR + sum_NSR.
    lhs = (n_c + n_i) * grads["w-reinforce"]
    rhs = lam * n_c * grads["psr"] + n_i * grads["nsr"]
    assert grads["nsr"].abs().sum() > 0 and grads["psr"].abs().sum() > 0
    torch.testing.assert_close(lhs, rhs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("objective, extra", [
    ("nsr", [("A=1 B=9|min?", "A"), ("A=1 B=9|min?", "A")]),  # all correct: excluded by NSR
    ("psr", [("A=1 B=9|min?", "Bxyzwv"), ("A=1 B=9|min?", "B")]),  # all wrong: excluded by PSR
])
def test_excluded_rows_leave_the_update_unchanged(base_model, tok, tmp_path, objective, extra):
    trainer = make_trainer(copy.deepcopy(base_model), tok, tmp_path, objective)
    loss_small, grad_small = loss_and_grad(trainer, score_fixed(trainer, tok, MIXED))
    big = score_fixed(trainer, tok, MIXED + extra)
    assert big["num_items_in_batch"].item() == tokens(
        c for p, c in MIXED if (c == PROMPTS[p]) == (objective == "psr"))
    assert big["tool_mask"][len(MIXED):].sum() == 0 and big["completion_mask"][len(MIXED):].sum() > 0
    loss_big, grad_big = loss_and_grad(trainer, big)
    torch.testing.assert_close(loss_big, loss_small)
    torch.testing.assert_close(grad_big, grad_small, rtol=1e-5, atol=1e-7)


def test_grpo_mode_equals_stock_grpo_trainer_on_thresholded_rewards(base_model, tok, tmp_path):
    """grpo is TRL's GRPO on the 0/1 reward "reward >= reward_threshold", whatever the graded reward."""
    def thresholded(completions, answer, **kw):
        return [float(r >= 0.5) for r in graded_reward(completions, answer, **kw)]

    ours = make_trainer(copy.deepcopy(base_model), tok, tmp_path, "grpo", reward=graded_reward, reward_threshold=0.5)
    stock = make_trainer(copy.deepcopy(base_model), tok, tmp_path, reward=thresholded, trainer_cls=GRPOTrainer)
    a, b = score_fixed(ours, tok, MIXED), score_fixed(stock, tok, MIXED)
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert a["advantages"].abs().sum() > 0
    (loss_a, grad_a), (loss_b, grad_b) = loss_and_grad(ours, a), loss_and_grad(stock, b)
    torch.testing.assert_close(loss_a, loss_b)
    torch.testing.assert_close(grad_a, grad_b)
    assert ours._metrics["train"]["kept_samples"] == [4.0]
    graded = graded_reward([c for _, c in MIXED], [PROMPTS[p] for p, _ in MIXED])
    assert ours._metrics["train"]["frac_correct"] == [sum(r >= 1.0 for r in graded) / len(MIXED)]  # full credit
    assert ours._metrics["train"]["reward"] == pytest.approx([sum(graded) / len(MIXED)])  # the graded mean


# One fixed batch of graded rewards, three groups of G = 2; 0.3 / 0.5 / 0.7 / 1.0 each sit exactly on a
# reward, so ">=" and ">" split it differently at every threshold.
GRADED_BATCH = [("A=3 B=7|max?", "a", 0.0), ("A=3 B=7|max?", "b", 0.3), ("A=5 B=2|max?", "cc", 0.5),
                ("A=5 B=2|max?", "d", 0.7), ("A=1 B=9|min?", "e", 1.0), ("A=1 B=9|min?", "fff", 0.6)]


def fixed_graded_reward(completions, **_):
    table = {c: r for _, c, r in GRADED_BATCH}
    return [table[c] for c in completions]


@pytest.mark.parametrize("objective", ["psr", "nsr", "w-reinforce", "grpo"])
def test_reward_threshold_splits_one_graded_batch(base_model, tok, tmp_path, objective):
    rewards = torch.tensor([r for _, _, r in GRADED_BATCH])
    splits = {}
    for threshold in (0.3, 0.5, 0.7, 1.0):
        trainer = make_trainer(copy.deepcopy(base_model), tok, tmp_path, objective, reward=fixed_graded_reward,
                               reward_threshold=threshold, lambda_psr=0.25)
        out = score_fixed(trainer, tok, [(p, c) for p, c, _ in GRADED_BATCH])
        positive = [r >= threshold for _, _, r in GRADED_BATCH]  # the documented rule: reward >= threshold
        splits[threshold] = positive
        loss_mask = out["completion_mask"] * out["tool_mask"] if "tool_mask" in out else out["completion_mask"]
        kept = (loss_mask.sum(dim=1) > 0).tolist()
        pos = torch.tensor(positive)
        if objective == "psr":
            assert kept == positive and out["advantages"].tolist() == pos.float().tolist()
        elif objective == "nsr":
            assert kept == [not p for p in positive]
            assert out["advantages"].tolist() == torch.where(pos, 0.0, -1.0).tolist()
        elif objective == "w-reinforce":
            assert all(kept) and out["advantages"].tolist() == torch.where(pos, 0.25, -1.0).tolist()
        else:  # grpo: (x - mean) / (std + 1e-4) per group of the 0/1 split
            x = pos.float().view(-1, G)
            expected = torch.nan_to_num((x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-4))
            assert all(kept)
            torch.testing.assert_close(out["advantages"], expected.view(-1))
        assert trainer._metrics["train"]["frac_correct"] == [float((rewards >= 1.0).float().mean())]
    assert splits == {0.3: [False, True, True, True, True, True], 0.5: [False, False, True, True, True, True],
                      0.7: [False, False, False, True, True, False], 1.0: [False, False, False, False, True, False]}


def test_nothing_kept_gives_zero_loss_and_logged_count(base_model, tok, tmp_path):
    trainer = make_trainer(copy.deepcopy(base_model), tok, tmp_path, "nsr")
    all_right = [("A=3 B=7|max?", "B")] * 2 + [("A=5 B=2|max?", "A")] * 2
    inputs = score_fixed(trainer, tok, all_right)
    loss, grad = loss_and_grad(trainer, inputs)
    assert loss.item() == 0.0 and torch.isfinite(grad).all() and grad.abs().sum() == 0
    assert trainer._metrics["train"]["kept_samples"] == [0.0]
    assert trainer._metrics["train"]["frac_correct"] == [1.0]
    # entropy is reported over every sampled completion, not over the (empty) kept set
    assert trainer._metrics["train"]["entropy"][-1] > 1.0


def test_nothing_kept_in_a_real_training_step(base_model, tok, tmp_path):
    always_right = lambda completions, **_: [1.0] * len(completions)  # noqa: E731
    trainer = make_trainer(copy.deepcopy(base_model), tok, tmp_path, "nsr", reward=always_right, max_steps=1)
    before = [p.clone() for p in trainer.model.parameters()]
    trainer.train()
    log = trainer.state.log_history[0]
    assert log["loss"] == 0.0 and log["kept_samples"] == 0.0 and log["frac_correct"] == 1.0
    assert all(torch.equal(b, p) for b, p in zip(before, trainer.model.parameters()))


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="objective"):
        NSRConfig(output_dir=str(tmp_path), objective="ppo", use_cpu=True)
    with pytest.raises(ValueError, match="token-mean loss_type"):
        NSRConfig(output_dir=str(tmp_path), objective="nsr", loss_type="grpo", use_cpu=True)
    for threshold in (0.0, 1.5):
        with pytest.raises(ValueError, match="reward_threshold"):
            NSRConfig(output_dir=str(tmp_path), objective="nsr", reward_threshold=threshold, use_cpu=True)
    with pytest.raises(ValueError, match="scale_rewards"):
        NSRConfig(output_dir=str(tmp_path), objective="grpo", scale_rewards="batch", use_cpu=True)
    config = NSRConfig(output_dir=str(tmp_path), objective="nsr", use_cpu=True)
    assert (config.bf16, config.activation_checkpointing, config.beta, config.loss_type) == (False, False, 0.0, "dapo")


# ---- the real CLI entry -------------------------------------------------------------------

COLUMNS = ["step", "loss", "reward_mean", "frac_correct", "kept_samples", "rollout_batch", "rollout_kept", "optimizer_step",
           "groups_generated", "groups_kept", "kept_positive_share", "entropy", "learning_rate", "seconds"]


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory, tok, base_model):
    import pandas as pd

    root = tmp_path_factory.mktemp("cli")
    base_model.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    frame = pd.DataFrame({"problem_id": [f"p{i}" for i in range(6)],
                          "prompt": [f"A={i} B={9 - i}|max?" for i in range(6)],
                          "answer": ["A" if i > 4 else "B" for i in range(6)]})
    frame.to_parquet(root / "train.parquet")
    return root


def train_cli(root, out, *extra):
    cli_main(["train", "--model", str(root / "base"), "--dataset-name", str(root / "train.parquet"),
              "--output-dir", str(out), "--num-generations", "2", "--prompts-per-step", "2",
              "--max-completion-length", "4", "--learning-rate", "1e-3", "--num-threads", "1", *extra])


def read_log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("mode", ["grpo", "psr", "nsr", "w-reinforce"])
def test_cli_train_writes_loadable_model_and_log(cli_inputs, tmp_path, mode):
    out = tmp_path / f"{mode}-out"
    train_cli(cli_inputs, out, "--mode", mode, "--max-steps", "2")
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == SHAPE.num_hidden_layers
    rows = read_log(out / "train_log.csv")
    assert list(rows[0]) == COLUMNS and [int(r["step"]) for r in rows] == [1, 2]
    assert all(0 <= float(r["frac_correct"]) <= 1 and float(r["entropy"]) > 0 for r in rows)
    assert float(rows[1]["seconds"]) >= float(rows[0]["seconds"]) > 0
    kept = {float(r["kept_samples"]) for r in rows}
    assert kept == {4.0} if mode in ("grpo", "w-reinforce") else kept <= {0.0, 1.0, 2.0, 3.0, 4.0}
    # no group filter: every generated group (2 prompts, one process) trains; binary rewards: positive = correct
    assert all(r["groups_generated"] == r["groups_kept"] == "2" for r in rows)
    assert all(float(r["kept_positive_share"]) == float(r["frac_correct"]) for r in rows)
    assert not (tmp_path / f"{mode}-out.checkpoints").exists()  # cleaned up after success


def test_cli_resume_continues_after_a_failed_job(cli_inputs, tmp_path, monkeypatch):
    import nsr.train_cli as module

    real_reward, calls = module.reward_correctness, []

    def crashing_reward(completions, answer, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # step 3 of the first run dies
            raise RuntimeError("simulated crash")
        return real_reward(completions, answer, **kwargs)

    out, ckpts = tmp_path / "out", tmp_path / "out.checkpoints"
    monkeypatch.setattr(module, "reward_correctness", crashing_reward)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_cli(cli_inputs, out, "--mode", "nsr", "--max-steps", "3", "--checkpoint-every", "1")
    assert not out.exists() and (ckpts / "checkpoint-2").is_dir()  # no half-written output
    first = read_log(ckpts / "train_log.csv")
    assert [int(r["step"]) for r in first] == [1, 2]

    monkeypatch.setattr(module, "reward_correctness", real_reward)
    train_cli(cli_inputs, out, "--mode", "nsr", "--max-steps", "3", "--checkpoint-every", "1", "--resume")
    rows = read_log(out / "train_log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert rows[:2] == first  # the resumed run appended to the failed run's rows
    assert float(rows[2]["seconds"]) > float(first[1]["seconds"])
    AutoModelForCausalLM.from_pretrained(out)


def test_cli_resume_ignores_checkpoints_of_other_settings(cli_inputs, tmp_path):
    out, ckpts = tmp_path / "out", tmp_path / "out.checkpoints"
    train_cli(cli_inputs, out, "--mode", "nsr", "--max-steps", "2", "--checkpoint-every", "1", "--keep-checkpoints")
    assert (ckpts / "checkpoint-2").is_dir()
    shutil.rmtree(out)  # as Snakemake does when the config changed
    # Another learning rate: the old checkpoint is not resumed; training starts from scratch.
    train_cli(cli_inputs, out, "--mode", "nsr", "--max-steps", "3", "--learning-rate", "5e-4", "--resume")
    rows = read_log(out / "train_log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert {float(r["learning_rate"]) for r in rows} == {5e-4}


def test_cli_rejects_bad_arguments_before_loading(cli_inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text('{"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}')
    shutil.copy(cli_inputs / "base" / "tokenizer.json", tmp_path / "no-weights")
    shutil.copy(cli_inputs / "base" / "tokenizer_config.json", tmp_path / "no-weights")
    cases = [
        (["--num-generations", "1"], "--num-generations must be >= 2"),
        (["--lambda-psr", "-1"], "--lambda-psr must be >= 0"),
        (["--reward-threshold", "0"], "--reward-threshold must be in (0, 1]"),
        (["--max-steps", "0"], "--max-steps must be > 0 (or -1: as many as --num-epochs give)"),
        (["--model", str(tmp_path / "missing")], f"--model {tmp_path}/missing: no such model folder"),
        (["--model", str(tmp_path)], f"--model {tmp_path}: not a model folder (no config.json)"),
        (["--model", "org/missing"], "--model org/missing: cannot load this hub id (offline or not on the hub?)"),
        (["--model", str(tmp_path / "no-weights")], f"--model {tmp_path}/no-weights: cannot load this local folder"),
        (["--dataset-name", str(tmp_path / "none.parquet")], f"problem file {tmp_path}/none.parquet does not exist"),
        (["--group-filter-max-batches", "-1"], "--group-filter-max-batches must be >= 0"),
        (["--mode", "psr", "--group-filter", "unsolved"], "--group-filter unsolved keeps only groups with no positive "
                                                          "sample, from which --mode psr learns nothing (it learns "
                                                          "from positive samples only)"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) as stop:
            cli_main(["train", "--mode", "nsr", "--model", str(cli_inputs / "base"), "--dataset-name",
                      str(cli_inputs / "train.parquet"), "--output-dir", str(tmp_path / "o"), "--max-steps", "1", *extra])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith(f"nsr train: error: {message}") and err.count("\n") == 1, err
        # nothing left behind: no output, no checkpoint folder (a failed run that trained keeps it to resume)
        assert not (tmp_path / "o").exists() and not (tmp_path / "o.checkpoints").exists(), extra


def test_fewer_problems_than_one_step_stop_before_anything_is_written(cli_inputs, tmp_path, capsys):
    """--num-epochs over fewer problems than --prompts-per-step has no step: one line, not TRL's traceback."""
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", "--mode", "psr", "--model", str(cli_inputs / "base"), "--dataset-name",
                  str(cli_inputs / "train.parquet"), "--subset-size", "3", "--prompts-per-step", "4",
                  "--num-epochs", "2", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err == ("nsr train: error: --subset-size 3: 3 training problems make no full step "
                                            "of --prompts-per-step 4; give more problems, a smaller --prompts-per-step, "
                                            "or --max-steps\n"), err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.checkpoints").exists()


def test_cli_errors_name_the_flag_as_typed(tmp_path, capsys, monkeypatch):
    """Checked before loading (no such folder) or while loading (no weights): the flag as typed, one line."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # the default --output-dir (grpo-start-ckpts/...) lands here
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text('{"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}')
    for flag in ("--vlm-name", "--model"):
        for model, message in (("missing", "no such model folder"), ("no-weights", "cannot load this local folder")):
            with pytest.raises(SystemExit) as exc:
                cli_main(["train", "--mode", "nsr", flag, str(tmp_path / model), "--dataset-name", "synthchart",
                          "--subset-size", "8"])
            assert exc.value.code == 2
            err = capsys.readouterr().err
            assert err.startswith(f"nsr train: error: {flag} {tmp_path / model}: {message}") and err.count("\n") == 1, err
            assert ("--model" in err) == (flag == "--model")
    assert not (tmp_path / "grpo-start-ckpts").exists()  # nothing written


class _Stop(Exception):
    pass


def test_cli_guide_flags_options_and_default_output_dir(cli_inputs, tmp_path, monkeypatch):
    """The guide's flags reach the trainer; --option reaches the task; no --output-dir: the guide's layout."""
    import nsr.trainer

    seen = {}

    def capture(**kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(nsr.trainer, "NSRTrainer", capture)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(_Stop):
        cli_main(["train", "--mode", "w-reinforce", "--vlm-name", str(cli_inputs / "base"), "--dataset-name", "synthchart",
                  "--seed", "2026", "--subset-size", "8", "--num-epochs", "1", "--num-generations", "4",
                  "--reward-threshold", "0.7", "--lambda-psr", "0.2", "--option", "types=rank", "--option", "credit=graded"])
    config, dataset = seen["args"], seen["train_dataset"]
    assert (config.objective, config.reward_threshold, config.lambda_psr, config.seed) == ("w-reinforce", 0.7, 0.2, 2026)
    assert (config.num_generations, config.num_train_epochs, len(dataset)) == (4, 1.0, 8)
    assert set(dataset["question_type"]) == {"rank"} and set(dataset["credit"]) == {"ranking"}
    # checkpoints go next to the default output folder grpo-start-ckpts/<model name>-<mode>-<seed>
    assert config.output_dir == "grpo-start-ckpts/base-w-reinforce-2026.checkpoints"
    from nsr.train_cli import default_output_dir
    assert str(default_output_dir("Qwen/Qwen2.5-VL-3B-Instruct", "nsr", 2025)) == \
        "grpo-start-ckpts/Qwen2.5-VL-3B-Instruct-nsr-2025"


def test_reward_function_grades_as_the_credit_column_says():
    from nsr.train_cli import reward_correctness

    completions, answers = ["DKBQ", "DKQB", "30"], ["DKQB", "DKQB", "40"]
    assert reward_correctness(completions, answers) == [0.0, 1.0, 0.0]
    assert reward_correctness(completions, answers, credit=["ranking", "ranking", "graded"]) == [0.5, 1.0, 0.75]


# ---- kill -9 at a checkpoint, then --resume: the same run as an uninterrupted one ------------

# Runs `nsr train` with the given arguments and SIGKILLs itself right after the checkpoint of step
# $KILL_AT is saved: the hardest stop there is, at the one point a checkpoint guarantees.
KILL_AT_CHECKPOINT = """
import os, signal, sys
import nsr.train_cli
import nsr.trainer
from nsr.cli import main
from transformers import TrainerCallback

if os.environ.get("REWARD_BY_LENGTH"):  # deterministic in the completion: some groups solved, some not
    nsr.train_cli.reward_correctness = lambda completions, **_: [float(len(c) % 3 == 0) for c in completions]

class KillAfterSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ.get("KILL_AT", "0")):
            os.kill(os.getpid(), signal.SIGKILL)

init = nsr.trainer.NSRTrainer.__init__
nsr.trainer.NSRTrainer.__init__ = lambda self, *a, callbacks=(), **k: init(
    self, *a, callbacks=[*callbacks, KillAfterSave()], **k)
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def resume_inputs(tmp_path_factory, tok, base_model):
    from nsr.data import load_problems
    from nsr.io import write_parquet

    root = tmp_path_factory.mktemp("resume")
    base_model.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    write_parquet(root / "train.parquet", load_problems("synthchart", split="train", num=16, seed=1))
    write_parquet(root / "test.parquet", load_problems("synthchart", split="test", num=4, seed=1))
    (root / "kill_at_checkpoint.py").write_text(KILL_AT_CHECKPOINT)
    return root


def train_subprocess(root, out, kill_at=None, resume=False, extra=(), reward_by_length=False):
    import os
    import subprocess
    import sys

    # 16 problems, 4 per step: an epoch is 4 steps, so 12 steps cross two epoch boundaries.
    args = ["train", "--model", str(root / "base"), "--dataset-name", str(root / "train.parquet"), "--mode", "w-reinforce",
            "--max-steps", "12", "--prompts-per-step", "4", "--num-generations", "2", "--max-completion-length", "6",
            "--learning-rate", "1e-2", "--seed", "3", "--num-threads", "1", "--checkpoint-every", "2",
            "--eval-dataset", str(root / "test.parquet"), "--eval-every", "3", "--eval-size", "4", "--eval-samples", "2",
            "--output-dir", str(out), *(["--resume"] if resume else []), *extra]  # a later flag wins
    # bit-identical resume is a CPU guarantee: keep a visible GPU out of it
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KILL_AT": str(kill_at or 0), "CUDA_VISIBLE_DEVICES": "",
           "REWARD_BY_LENGTH": "1" if reward_by_length else ""}
    return subprocess.run([sys.executable, str(root / "kill_at_checkpoint.py"), *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_killed_and_resumed_training_equals_an_uninterrupted_one(resume_inputs, tmp_path):
    """kill -9 at checkpoint 6 (inside the 2nd epoch), resume, kill -9 at checkpoint 8 (an epoch
    boundary), resume to the end: bit-identical weights, and train_log.csv identical in every column
    but `seconds` (wall time; it continues from the kept rows, so it keeps increasing)."""
    reference = tmp_path / "reference"
    done = train_subprocess(resume_inputs, reference)
    assert done.returncode == 0, done.stderr[-3000:]

    out, ckpts = tmp_path / "run", tmp_path / "run.checkpoints"
    killed = train_subprocess(resume_inputs, out, kill_at=6)
    assert killed.returncode == -9 and not out.exists() and (ckpts / "checkpoint-6").is_dir(), killed.stderr[-3000:]
    killed = train_subprocess(resume_inputs, out, kill_at=8, resume=True)
    assert killed.returncode == -9 and '"resume_from": "' + str(ckpts / "checkpoint-6") in killed.stdout
    # a kill while the next checkpoint was being written: a newer checkpoint without trainer_state.json
    shutil.copytree(ckpts / "checkpoint-8", ckpts / "checkpoint-10")
    (ckpts / "checkpoint-10" / "trainer_state.json").unlink()
    resumed = train_subprocess(resume_inputs, out, resume=True)
    assert resumed.returncode == 0 and '"resume_from": "' + str(ckpts / "checkpoint-8") in resumed.stdout, \
        resumed.stderr[-3000:]

    assert (out / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    ours, theirs = read_log(out / "train_log.csv"), read_log(reference / "train_log.csv")
    assert [int(r["step"]) for r in ours] == list(range(0, 13))  # step 0 (the base) once, kept through resumes
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in ours] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in theirs]
    assert {r["eval_accuracy"] != "" for r in ours} == {True, False}  # held-out evaluation rows resumed too
    # the evaluations' samples too: evaluated at 0, 3, 6 (killed at 6 and 8: 9 redone), 9, 12, none twice
    import pandas as pd

    samples = pd.read_parquet(out / "eval_samples.parquet")
    pd.testing.assert_frame_equal(samples, pd.read_parquet(reference / "eval_samples.parquet"))
    assert samples.groupby("step").size().to_dict() == {step: 4 * 2 for step in (0, 3, 6, 9, 12)}
    seconds = [float(r["seconds"]) for r in ours]
    assert seconds == sorted(seconds)


@pytest.mark.slow
def test_killed_and_resumed_group_filtered_training_equals_an_uninterrupted_one(resume_inputs, tmp_path):
    """NSR on unsolved groups with refill (up to 3 generation batches a step, their prompts drawn by seed and
    step): kill -9 at checkpoint 4, resume: bit-identical weights and train_log.csv (but `seconds`)."""
    extra = ("--mode", "nsr", "--group-filter", "unsolved", "--group-filter-max-batches", "3", "--max-steps", "6")
    reference = tmp_path / "reference"
    done = train_subprocess(resume_inputs, reference, extra=extra, reward_by_length=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "run"
    killed = train_subprocess(resume_inputs, out, kill_at=4, extra=extra, reward_by_length=True)
    assert killed.returncode == -9 and (tmp_path / "run.checkpoints" / "checkpoint-4").is_dir(), killed.stderr[-3000:]
    resumed = train_subprocess(resume_inputs, out, resume=True, extra=extra, reward_by_length=True)
    assert resumed.returncode == 0 and "checkpoint-4" in resumed.stdout, resumed.stderr[-3000:]

    assert (out / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    ours, theirs = read_log(out / "train_log.csv"), read_log(reference / "train_log.csv")
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in ours] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in theirs]
    trained = [r for r in ours if int(r["step"]) > 0]
    # the filter dropped groups and refilled, after the resume too (4 groups a step)
    assert any(int(r["groups_generated"]) > 4 for r in trained[4:]) and all(int(r["groups_kept"]) <= 4 for r in trained)
    assert {float(r["kept_positive_share"]) for r in trained if r["kept_positive_share"]} == {0.0}


@pytest.mark.parametrize("call_cost", [0, 10**6], ids=["bucket-per-length", "one-bucket"])
@pytest.mark.parametrize("objective", ["grpo", "psr", "nsr", "w-reinforce"])
def test_shared_prefix_forward_equals_trls_forward_of_every_row(base_model, tok, tmp_path, monkeypatch, objective,
                                                               call_cost):
    """The loss forward that runs each distinct prompt once (its cache shared by the rows that have it)
    and the completions in length buckets gives TRL's loss, gradient and per-token entropies; prompts of
    different lengths (left padding), completions of 1-5 tokens and shuffled rows included."""
    from nsr.trainer import shared_prefix

    lengths = [len(tok(c)["input_ids"]) + 1 for _, c, _ in MIXED_LENGTHS]
    assert len(shared_prefix.completion_buckets(lengths, call_cost)) == (4 if call_cost == 0 else 1)
    monkeypatch.setattr(shared_prefix, "BUCKET_CALL_COST", call_cost)

    def run(shared):
        trainer = make_trainer(copy.deepcopy(base_model), tok, tmp_path, objective, reward=graded_reward,
                               shared_prefix_forward=shared, temperature=0.7)
        completion_ids = [tok(c)["input_ids"] + [tok.eos_token_id] for _, c, _ in MIXED_LENGTHS]
        trainer._generate_single_turn = lambda *a, **k: ([list(ids) for ids in completion_ids], None)
        inputs = trainer._generate_and_score_completions([{"prompt": p, "answer": a} for p, _, a in MIXED_LENGTHS])
        # Rows shuffled as TRL's _prepare_inputs shuffles a generation batch: groups are found by value
        order = torch.tensor([3, 0, 5, 1, 4, 2])
        inputs = {k: v[order] if isinstance(v, torch.Tensor) and v.dim() and len(v) == len(order) else v
                  for k, v in inputs.items()}
        loss, grad = loss_and_grad(trainer, inputs)
        return loss, grad, trainer._last_entropies.detach() * inputs["completion_mask"]

    (loss_a, grad_a, ent_a), (loss_b, grad_b, ent_b) = run(True), run(False)
    assert grad_b.abs().max() > 0
    torch.testing.assert_close(loss_a, loss_b)
    torch.testing.assert_close(grad_a, grad_b, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(ent_a, ent_b, atol=1e-5, rtol=1e-5)


def test_completion_buckets_minimise_padded_tokens_plus_calls():
    """The dynamic program's buckets cost what the best of every split of the sorted lengths costs."""
    import itertools
    import random

    from nsr.trainer.shared_prefix import completion_buckets

    def cost(lengths, bounds, call_cost):
        previous, total = 0, 0.0
        for bound in bounds:
            total += sum(1 for n in lengths if previous < n <= bound) * bound + call_cost
            previous = bound
        return total

    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.choice([1, 2, 2, 3, 4, 7, 8, 16]) for _ in range(rng.randint(1, 40))]
        call_cost = rng.choice([0, 3, 20, 64, 1000])
        widths = sorted(set(lengths))
        best = min(cost(lengths, [*cut, widths[-1]], call_cost)
                   for r in range(len(widths)) for cut in itertools.combinations(widths[:-1], r))
        bounds = completion_buckets(lengths, call_cost)
        assert bounds == sorted(set(bounds)) and bounds[-1] == max(lengths)
        assert cost(lengths, bounds, call_cost) == best
    assert completion_buckets([2] * 64 + [8] * 64, 64) == [2, 8]   # the embedded default's shape: two buckets
    assert completion_buckets([2] * 3 + [8] * 3, 64) == [8]        # a few rows: one call is cheaper
    assert completion_buckets([]) == []


# (prompt, completion, answer) in groups of G; prompts of three lengths, completions of 0-4 tokens before EOS.
MIXED_LENGTHS = [("A=3 B=7|max?", "B", "B"), ("A=3 B=7|max?", "AB", "B"), ("A=5 B=2 C=44 D=12|max?", "Bxyz", "C"),
                 ("A=5 B=2 C=44 D=12|max?", "C", "C"), ("C=1 B=9 A=4|min?", "C", "C"), ("C=1 B=9 A=4|min?", "", "C")]

@pytest.fixture(scope="module")
def warm_inputs(tmp_path_factory, tok):
    """A base that is partly right (60 warm-start steps, 4 s): held-out samples mix correct, wrong and malformed."""
    from nsr.base import warm_start
    from nsr.warmstart import Phase
    from nsr.data import load_problems
    from nsr.io import write_parquet

    root = tmp_path_factory.mktemp("warm")
    options = {"types": "max,min,rank", "max_categories": "3", "value_range": "10,99", "shuffle_labels": "false"}
    train = load_problems("synthchart", split="train", num=200, seed=1, **options)
    torch.set_num_threads(1)
    model = build_tiny_model(tok, SHAPE, seed=0)
    warm_start(model, tok, list(train["prompt"]), list(train["answer"]), [Phase(60, 3e-3, 16)], seed=0)
    model.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    write_parquet(root / "train.parquet", train)
    write_parquet(root / "test.parquet", load_problems("synthchart", split="test", num=6, seed=1, **options))
    return root


def test_held_out_pass_at_k_at_step_zero_and_every_eval_step_recomputed_from_its_samples(warm_inputs, tmp_path):
    """The log's held-out columns at step 0 (the base) and every --eval-every step equal what the
    evaluation's own samples (eval_samples.parquet, kept in the model folder) give, recomputed here
    from the completions: Pass@1 = mean share correct, Pass@k at k = n = share of problems with a
    correct sample, malformed = neither correct nor a possible answer of the problem's form."""
    import json

    import pandas as pd

    from nsr.rewards import extract_answer, full_credit, score
    from nsr.tasks.synthchart import is_well_formed

    out, n = tmp_path / "out", 8
    cli_main(["train", "--model", str(warm_inputs / "base"), "--dataset-name", str(warm_inputs / "train.parquet"),
              "--mode", "nsr", "--max-steps", "4", "--prompts-per-step", "4", "--num-generations", "4",
              "--max-completion-length", "6", "--learning-rate", "1e-4", "--seed", "3", "--num-threads", "1",
              "--eval-dataset", str(warm_inputs / "test.parquet"), "--eval-every", "2", "--eval-size", "6",
              "--eval-samples", str(n), "--output-dir", str(out)])
    log = pd.read_csv(out / "train_log.csv")
    assert log["step"].tolist() == [0, 1, 2, 3, 4]
    assert log.loc[0, ["loss", "reward_mean", "entropy"]].isna().all()  # step 0: no update, only the evaluation
    evaluated = log.dropna(subset=["eval_pass_at_k"]).set_index("step")
    assert evaluated.index.tolist() == [0, 2, 4] and (evaluated["eval_k"] == n).all()

    samples = pd.read_parquet(out / "eval_samples.parquet")
    problems = pd.read_parquet(warm_inputs / "test.parquet").set_index("problem_id")
    assert sorted(samples["step"].unique()) == [0, 2, 4]
    for step, rows in samples.groupby("step"):
        assert len(rows) == 6 * n and rows.groupby("problem_id")["sample_idx"].nunique().eq(n).all()
        problem = problems.loc[rows["problem_id"]]
        correct = [full_credit(score(c, a)) for c, a in zip(rows["completion"], problem["answer"])]
        formed = [is_well_formed(json.loads(t)["values"], q, extract_answer(c))
                  for c, t, q in zip(rows["completion"], problem["table"], problem["question_type"])]
        assert rows["correct"].tolist() == correct
        per_problem = pd.DataFrame({"pid": rows["problem_id"].to_numpy(), "c": correct}).groupby("pid")["c"]
        malformed = sum(not c and not f for c, f in zip(correct, formed)) / len(rows)
        assert evaluated.loc[step, "eval_pass_at_1"] == pytest.approx(per_problem.mean().mean())
        assert evaluated.loc[step, "eval_pass_at_k"] == pytest.approx(per_problem.any().mean())
        assert evaluated.loc[step, "eval_malformed"] == pytest.approx(malformed)
    # a real mix: some problems solved and some not, malformed samples, so each column is tested
    assert 0 < evaluated["eval_pass_at_1"].min() and evaluated["eval_pass_at_k"].min() < 1
    assert 0 < evaluated["eval_malformed"].max() and (samples["form"] == "wrong").any()
