"""batch_filter subset (nsr.trainer.batch_filter): excluded samples leave the rollout batch, one optimizer
step per mini-batch left, as the official code; mask: every objective takes the same steps."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from datasets import Dataset

from nsr.tiny import TinyModelConfig, build_tiny_model
from nsr.trainer import NSRConfig, NSRTrainer, TrainLogCallback
from nsr.trainer.batch_filter import EMPTY, SKIP, optimizer_steps, subset_slots

SHAPE = TinyModelConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=2,
                        num_key_value_heads=1, max_position_embeddings=64)
# Four prompts of one length (left padding then does not depend on which rows share a micro-batch).
PROMPTS = {"A=3 B=7|max?": "B", "A=5 B=2|max?": "A", "A=1 B=9|min?": "A", "A=8 B=4|min?": "B"}
GENERATIONS = 4
ROWS = len(PROMPTS) * GENERATIONS  # one generation batch: 4 prompts x 4


@pytest.fixture(scope="module")
def tok(tokenizer):  # tests/conftest.py's byte-level tokenizer
    return tokenizer


@pytest.fixture(scope="module")
def base_model(tok):
    return build_tiny_model(tok, SHAPE, seed=0)  # small random weights: near-uniform outputs


def rigged(*correct_per_batch: int):
    """A reward function that marks the first ``correct_per_batch[i]`` samples of the i-th generation
    batch correct (TRL scores a generation batch in one call) and the rest wrong."""
    calls = []

    def reward(completions, **_):
        correct = correct_per_batch[min(len(calls), len(correct_per_batch) - 1)]
        calls.append(len(completions))
        return [float(i < correct) for i in range(len(completions))]

    return reward


def trainer_for(model, tok, tmp_path, objective, batch_filter, reward, max_steps, **config):
    """4 prompts x 4 per generation batch, 4 optimizer steps per generation (mini-batch: 4 samples)."""
    sizes = {"per_device_train_batch_size": 4, "steps_per_generation": 4, **config}
    args = NSRConfig(objective=objective, batch_filter=batch_filter, output_dir=str(tmp_path / "run"),
                     num_generations=GENERATIONS, max_completion_length=6, max_steps=max_steps, learning_rate=1e-2,
                     lr_scheduler_type="constant", report_to="none", use_cpu=True, logging_steps=1,
                     save_strategy="no", seed=0, **sizes)
    dataset = Dataset.from_dict({"prompt": list(PROMPTS), "answer": list(PROMPTS.values())})
    log = TrainLogCallback(tmp_path / f"{objective}-{batch_filter}.csv")
    trainer = NSRTrainer(model=copy.deepcopy(model), reward_funcs=reward, args=args, train_dataset=dataset,
                         processing_class=tok, callbacks=[log])
    return trainer, log.path


def adam_steps(trainer) -> set[int]:
    """The step count of every parameter's Adam state (empty: the optimizer never stepped)."""
    return {int(state["step"]) for state in trainer.optimizer.state_dict()["state"].values()}


@pytest.mark.parametrize("objective, batch_filter, correct, steps", [
    ("psr", "subset", 5, 2),          # ceil(5 / 4)
    ("nsr", "subset", 5, 3),          # ceil(11 / 4)
    ("psr", "subset", 16, 4),
    ("nsr", "subset", 16, 0),
    ("psr", "mask", 5, 4),
    ("nsr", "mask", 5, 4),
    ("grpo", "subset", 5, 4),
    ("grpo", "mask", 5, 4),
    ("w-reinforce", "subset", 5, 4),
])
def test_optimizer_steps_per_rollout_batch(base_model, tok, tmp_path, objective, batch_filter, correct, steps):
    trainer, log_path = trainer_for(base_model, tok, tmp_path, objective, batch_filter, rigged(correct), max_steps=4)
    trainer.train()
    assert adam_steps(trainer) == ({steps} if steps else set())
    log = pd.read_csv(log_path)
    assert list(log["rollout_batch"]) == [0, 0, 0, 0]
    kept = {"psr": correct, "nsr": ROWS - correct}.get(objective, ROWS)
    assert list(log["rollout_kept"]) == [kept] * 4
    assert list(log["optimizer_step"]) == [1] * steps + [0] * (4 - steps)
    assert log["optimizer_step"].sum() == (optimizer_steps(kept, 4) if batch_filter == "subset" else 4)


def test_gradient_accumulation_and_iterations_under_subset(base_model, tok, tmp_path):
    """Micro-batches of 2 samples, 2 per optimizer step (mini-batch 4), 4 steps per generation, each rollout
    batch used twice (num_iterations 2, verl's ppo_epochs): 5 kept samples give 2 steps per iteration, the
    same subset both times."""
    trainer, log_path = trainer_for(base_model, tok, tmp_path, "psr", "subset", rigged(5, 0), max_steps=8,
                                    per_device_train_batch_size=2, gradient_accumulation_steps=2,
                                    steps_per_generation=8, num_iterations=2)
    trainer.train()
    assert adam_steps(trainer) == {4}
    log = pd.read_csv(log_path)
    assert list(log["rollout_batch"]) == [0] * 8
    assert list(log["optimizer_step"]) == [1, 1, 0, 0, 1, 1, 0, 0]


def test_a_rollout_batch_with_nothing_kept_leaves_weights_and_optimizer_as_they_were(base_model, tok, tmp_path):
    """Two rollout batches, 5 correct then 0: PSR under subset takes 2 steps, then none; weights and Adam's state
    after the second batch are bit-identical to a run that stopped after the first."""
    one, _ = trainer_for(base_model, tok, tmp_path / "one", "psr", "subset", rigged(5, 0), max_steps=4)
    one.train()
    two, log_path = trainer_for(base_model, tok, tmp_path / "two", "psr", "subset", rigged(5, 0), max_steps=8)
    two.train()
    assert adam_steps(one) == adam_steps(two) == {2}
    for a, b in zip(one.model.parameters(), two.model.parameters()):
        assert torch.equal(a, b)
    first, second = one.optimizer.state_dict()["state"], two.optimizer.state_dict()["state"]
    assert first.keys() == second.keys()
    for key in first:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(first[key][name], second[key][name])
    log = pd.read_csv(log_path)
    assert list(log["rollout_batch"]) == [0] * 4 + [1] * 4
    assert list(log["rollout_kept"]) == [5] * 4 + [0] * 4
    assert list(log["optimizer_step"]) == [1, 1, 0, 0, 0, 0, 0, 0]
    assert (log.loc[log["optimizer_step"] == 0, "loss"] == 0).all()


@pytest.mark.parametrize("objective", ["grpo", "w-reinforce"])
def test_subset_and_mask_train_the_same_weights_when_every_sample_is_kept(base_model, tok, tmp_path, objective):
    weights = {}
    for batch_filter in ("mask", "subset"):
        trainer, _ = trainer_for(base_model, tok, tmp_path / batch_filter, objective, batch_filter, rigged(5, 9),
                                 max_steps=8)
        trainer.train()
        weights[batch_filter] = [p.detach().clone() for p in trainer.model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(weights["mask"], weights["subset"]))
    assert any(not torch.equal(a, b) for a, b in zip(weights["mask"], base_model.parameters()))


# ---- the loss of a mini-batch: verl's formula --------------------------------------------------------

def fixed_batch(trainer, tok, completions):
    """TRL's scoring path on fixed completions (one per row, groups of GENERATIONS)."""
    ids = [tok(c)["input_ids"] + [tok.eos_token_id] for c in completions]
    trainer._generate_single_turn = lambda prompt_ids, *a, **k: ([list(i) for i in ids], None)
    rows = [{"prompt": p, "answer": a} for p, a in PROMPTS.items() for _ in range(GENERATIONS)]
    return trainer._generate_and_score_completions(rows)


def hand_loss(model, tok, batch, rows, advantages, mini_batch):
    """verl (dp_actor.update_policy, use_dynamic_bsz) at ratio 1: -token_mean(adv * log p) * rows / mini_batch,
    with log p computed here, independently of TRL."""
    total, tokens = 0.0, 0
    for row in rows:
        prompt = batch["prompt_ids"][row][batch["prompt_mask"][row].bool()].tolist()
        completion = batch["completion_ids"][row][batch["completion_mask"][row].bool()].tolist()
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1]
        logp = logits.log_softmax(-1).gather(1, torch.tensor(completion)[:, None]).sum()
        total = total - advantages[row] * logp
        tokens += len(completion)
    return total / tokens * len(rows) / mini_batch


@pytest.mark.parametrize("objective", ["psr", "nsr"])
def test_loss_of_full_and_partial_mini_batches_is_verls(base_model, tok, tmp_path, objective):
    # micro-batches of 2 rows, 2 per optimizer step (mini-batch 4), 8 slots: a generation batch of 16
    exact = lambda completions, answer, **_: [float(c == a) for c, a in zip(completions, answer)]  # noqa: E731
    trainer, _ = trainer_for(base_model, tok, tmp_path, objective, "subset", exact, max_steps=4,
                             per_device_train_batch_size=2, gradient_accumulation_steps=2, steps_per_generation=8)
    trainer.current_gradient_accumulation_steps = 2  # set by the training loop; we drive single micro-batches
    trainer.model.train()
    right = {p: a for p, a in PROMPTS.items()}
    # completions of different lengths; 5 right: psr keeps 5 (a full mini-batch, then one of 1 row), nsr 11
    completions = []
    for i, prompt in enumerate(PROMPTS):
        completions += [right[prompt], "xy" * (i + 1), "z", right[prompt] if i < 1 else "qq"][:GENERATIONS]
    batch = fixed_batch(trainer, tok, completions)
    keep = batch["kept"]
    kept_rows = keep.nonzero().flatten().tolist()
    assert len(kept_rows) == (5 if objective == "psr" else 11)
    steps = optimizer_steps(len(kept_rows), 4)
    slots = subset_slots(batch, keep, micro_batch=2, accumulation=2, slots=8, steps=steps)
    assert [SKIP in s for s in slots] == [False] * (2 * steps) + [True] * (8 - 2 * steps)
    advantages = batch["advantages"]
    for slot_index, slot in enumerate(slots[:2 * steps]):
        rows = kept_rows[2 * slot_index:2 * slot_index + 2]
        model = trainer.model
        model.zero_grad()
        loss = trainer._compute_loss(model, slot)
        loss.backward()
        grad = torch.cat([p.grad.flatten() for p in model.parameters()])
        if not rows:  # the partial mini-batch's second micro-batch: a stand-in row with no loss
            assert slot[EMPTY] and loss.item() == 0.0 and grad.abs().sum() == 0
            continue
        model.zero_grad()
        expected = hand_loss(model, tok, batch, rows, advantages, mini_batch=4)
        expected.backward()
        expected_grad = torch.cat([p.grad.flatten() for p in model.parameters()])
        # at ratio 1 TRL's per-token loss is -adv: the value is -adv * rows / mini_batch
        assert loss.item() == pytest.approx(-float(advantages[rows[0]]) * len(rows) / 4, rel=1e-6)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-7)


def test_config_checks_of_subset(tmp_path):
    with pytest.raises(ValueError, match="batch_filter must be one of"):
        NSRConfig(output_dir=str(tmp_path), objective="psr", batch_filter="drop", use_cpu=True)
    with pytest.raises(ValueError, match="loss_type"):
        NSRConfig(output_dir=str(tmp_path), objective="psr", batch_filter="subset", loss_type="bnpo", use_cpu=True)
    with pytest.raises(ValueError, match="multiple of gradient_accumulation_steps"):
        NSRConfig(output_dir=str(tmp_path), objective="nsr", batch_filter="subset", steps_per_generation=3,
                  gradient_accumulation_steps=2, use_cpu=True)
    # objectives that keep every sample: subset is the same run, any loss type TRL allows
    NSRConfig(output_dir=str(tmp_path), objective="w-reinforce", batch_filter="subset", loss_type="bnpo", use_cpu=True)
