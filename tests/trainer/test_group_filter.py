"""group_filter (nsr.trainer.group_filter): whole groups of rollouts leave the batch before batch_filter acts on
samples; refill generates more batches until the batch holds one generation batch's worth of surviving groups."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset
from test_batch_filter import GENERATIONS, PROMPTS, SHAPE, adam_steps, trainer_for

from nsr.objectives import advantages, methods
from nsr.tiny import build_tiny_model
from nsr.trainer import NSRConfig, NSRTrainer
from nsr.trainer.group_filter import (GROUP_FILTERS, GROUP_KINDS, LEARNS_FROM, kinds_kept, refill_prompts,
                                      refusal, take_in_order)
from nsr.trainer.rollout_rows import join_rows

GROUPS = len(PROMPTS)  # one generation batch: 4 prompts x 4 rollouts
COUNTS = (0, 1, 3, 4)  # positives per group of the rigged batch
KEPT = {"all": [0, 1, 3, 4], "mixed": [1, 3], "unsolved": [0], "solved": [1, 3, 4]}


@pytest.fixture(scope="module")
def tok(tokenizer):  # tests/conftest.py's byte-level tokenizer
    return tokenizer


@pytest.fixture(scope="module")
def base_model(tok):
    return build_tiny_model(tok, SHAPE, seed=0)  # test_batch_filter's: small random weights


def rigged_groups(*patterns):
    """A reward function: in the i-th generation batch (TRL scores one in one call) the g-th group's first
    ``patterns[i][g]`` rollouts are positive (the last pattern repeats). ``.prompts`` records each batch's
    prompts, one per group."""
    prompts_seen = []

    def reward(prompts, completions, **_):
        pattern = patterns[min(len(prompts_seen), len(patterns) - 1)]
        prompts_seen.append(prompts[::GENERATIONS])
        return [float(i % GENERATIONS < pattern[i // GENERATIONS]) for i in range(len(completions))]

    reward.prompts = prompts_seen
    return reward


def capture_batches(trainer) -> list[dict]:
    """The batches _generate_and_score_completions hands to TRL's split (after every filter)."""
    batches, real = [], trainer._generate_and_score_completions
    trainer._generate_and_score_completions = lambda inputs: batches.append(real(inputs)) or batches[-1]
    return batches


# ---- the registry and the refusals --------------------------------------------------------------------

@pytest.mark.parametrize("wrap", [np.array, torch.tensor, list], ids=["numpy", "torch", "ints"])
def test_each_filter_keeps_its_groups(wrap):
    for name, kept in KEPT.items():
        if wrap is list:  # plain ints, one group at a time
            keep = [bool(GROUP_FILTERS[name](count, GENERATIONS)) for count in COUNTS]
        else:
            keep = [bool(k) for k in GROUP_FILTERS[name](wrap(COUNTS), GENERATIONS)]
        assert [c for c, k in zip(COUNTS, keep) if k] == kept, name
    assert {name: kinds_kept(name) for name in GROUP_FILTERS} == {
        "all": set(GROUP_KINDS), "mixed": {"mixed"}, "unsolved": {"unsolved"}, "solved": {"mixed", "all-positive"}}


def test_declared_learning_kinds_are_the_objectives_own():
    """A kind of group is learned from iff some sample the objective keeps has a nonzero advantage there."""
    assert set(LEARNS_FROM) == set(methods())
    groups = {"unsolved": [False] * 4, "mixed": [True, False, True, False], "all-positive": [True] * 4}
    for objective in methods():
        learned = set()
        for kind, correct in groups.items():
            adv, keep = advantages(torch.tensor(correct), objective, lambda_psr=0.1, group_size=4)
            if bool((keep & (adv != 0)).any()):
                learned.add(kind)
        assert learned == LEARNS_FROM[objective], objective


def test_refused_combinations_are_named_in_one_line(tmp_path):
    refused = {(o, f) for o in methods() for f in GROUP_FILTERS if refusal(o, f)}
    assert refused == {("grpo", "unsolved"), ("psr", "unsolved")}
    assert refusal("grpo", "unsolved") == ("keeps only groups with no positive sample, from which objective 'grpo' "
                                           "learns nothing (every advantage is zero)")
    with pytest.raises(ValueError, match="^group_filter 'unsolved' keeps only groups with no positive sample, from "
                                         "which objective 'psr' learns nothing"):
        NSRConfig(output_dir=str(tmp_path), objective="psr", group_filter="unsolved", use_cpu=True)
    with pytest.raises(ValueError, match="group_filter must be one of"):
        NSRConfig(output_dir=str(tmp_path), objective="nsr", group_filter="hard", use_cpu=True)
    with pytest.raises(ValueError, match="group_filter_max_batches must be >= 0"):
        NSRConfig(output_dir=str(tmp_path), objective="nsr", group_filter="unsolved", group_filter_max_batches=-1,
                  use_cpu=True)
    with pytest.raises(ValueError, match="needs a token-mean loss_type"):
        NSRConfig(output_dir=str(tmp_path), objective="grpo", group_filter="mixed", loss_type="grpo", use_cpu=True)


def test_surviving_groups_are_taken_in_order_within_each_process_share():
    """2 processes of 6 rows, groups of 4: group 1 spans both (rows 4-7). Taken in order while every process
    holding a row of the group has room: no process ends with more rows than its share."""
    room = [6, 6]
    assert take_in_order([True, False, True], 4, 6, room) == [True, False, True] and room == [2, 2]
    # the next batch: group 0 (4 rows of process 0) no longer fits, group 1 (2 rows on each) does
    assert take_in_order([True, True, False], 4, 6, room) == [False, True, False] and room == [0, 0]
    assert take_in_order([True, True, True], 4, 6, room) == [False, False, False]


def test_the_registry_and_the_config_checks_import_neither_torch_nor_trl():
    """The config checks run when Snakemake builds the DAG: nsr.trainer's names load on first use only."""
    import subprocess
    import sys

    code = ("import sys, nsr.trainer.group_filter, nsr.study_config, nsr.train_cli; "
            "print(sorted(m for m in ('torch', 'trl', 'transformers') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_refill_prompts_are_fixed_by_seed_and_step_and_distinct_within_a_step():
    blocks = [refill_prompts(7, 3, refill, 4, 10) for refill in (1, 2)]
    assert blocks == [refill_prompts(7, 3, refill, 4, 10) for refill in (1, 2)]  # a function of its arguments
    assert len(set(blocks[0] + blocks[1])) == 8 and all(0 <= i < 10 for block in blocks for i in block)
    assert refill_prompts(7, 4, 1, 4, 10) != blocks[0] and refill_prompts(8, 3, 1, 4, 10) != blocks[0]
    # the third refill exhausts the 10 prompts and starts the next pass: every prompt once before any repeats
    assert sorted(blocks[0] + blocks[1] + refill_prompts(7, 3, 3, 4, 10)[:2]) == list(range(10))


# ---- rows of several generation batches as one --------------------------------------------------------

def fixed_batch(trainer, tok, rows):
    """TRL's scoring path on fixed completions: rows = [(prompt, completion), ...] in groups of GENERATIONS."""
    ids = [tok(c)["input_ids"] + [tok.eos_token_id] for _, c in rows]
    trainer._generate_single_turn = lambda *a, **k: ([list(i) for i in ids], None)
    return trainer._score_generation([{"prompt": p, "answer": PROMPTS.get(p, "A")} for p, _ in rows])[0]


def test_joined_rows_are_the_batch_trl_builds_from_them(base_model, tok, tmp_path):
    """Two generation batches (prompts and completions of other lengths) joined equal TRL's one batch of all
    their rows: prompts left-padded, completions and masks right-padded, the objective's masks kept."""
    by_content = lambda completions, **_: [float(c in ("A", "CC")) for c in completions]  # noqa: E731
    trainer, _ = trainer_for(base_model, tok, tmp_path, "nsr", "mask", by_content, max_steps=1)
    trainer.model.train()
    first = [("A=3 B=7|max?", c) for c in ("B", "AB", "xyzw", "A")]
    second = [("A=15 B=27 C=3|min?", c) for c in ("C", "", "CC", "ABCDEFG")]
    a, b, both = fixed_batch(trainer, tok, first), fixed_batch(trainer, tok, second), fixed_batch(trainer, tok,
                                                                                                  first + second)
    for key in ("prompt_ids", "completion_ids"):
        assert a[key].size(1) < b[key].size(1)  # two other widths: padded when joined
    joined = join_rows([(a, [0, 1, 2, 3]), (b, [0, 1, 2, 3])], tok.pad_token_id, stand_ins=3)
    for key in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages", "sampled_mask",
                "tool_mask"):
        torch.testing.assert_close(joined[key][:8], both[key], msg=key)
    # stand-ins: row 0 of the first batch with no loss and no entropy
    assert torch.equal(joined["prompt_ids"][8:], both["prompt_ids"][[0, 0, 0]])
    assert joined["tool_mask"][8:].sum() == 0 and joined["sampled_mask"][8:].sum() == 0
    picked = join_rows([(a, [3]), (b, [1, 2])], tok.pad_token_id)
    assert torch.equal(picked["completion_mask"].sum(1), both["completion_mask"][[3, 5, 6]].sum(1))


def test_joined_image_rows_are_the_batch_trl_builds_from_them(tmp_path):
    """A tiny Qwen2.5-VL: pixel_values (split per row by image_grid_thw), mm_token_type_ids (prompt + completion
    wide, padded on both sides) and num_images joined as TRL's one batch of the same rows has them."""
    from nsr.tasks.synthchart import load
    from nsr.train_cli import build_dataset
    from nsr.vlm import load_processing, save_tiny_vlm

    vlm_dir = save_tiny_vlm(tmp_path / "vlm", seed=0)
    processing = load_processing(vlm_dir)
    dataset = build_dataset(pd.DataFrame(load("train", 4, 0, render="image")))
    args = NSRConfig(objective="nsr", output_dir=str(tmp_path / "run"), num_generations=2, max_steps=1,
                     per_device_train_batch_size=4, max_completion_length=4, use_cpu=True, report_to="none")
    by_length = lambda completions, **_: [float(len(str(c)) % 2) for c in completions]  # noqa: E731
    trainer = NSRTrainer(model=str(vlm_dir), reward_funcs=by_length, args=args, train_dataset=dataset,
                         processing_class=processing)
    trainer.model.train()
    tok = processing.tokenizer
    rows = [dataset[0], dataset[0], dataset[3], dataset[3]]
    ids = [tok(c)["input_ids"] + [tok.eos_token_id] for c in ("1", "22", "333", "")]

    def score(part):
        trainer._generate_single_turn = lambda *a, **k: ([list(ids[i]) for i in part], None)
        return trainer._score_generation([rows[i] for i in part])[0]

    first, second, both = score([0, 1]), score([2, 3]), score([0, 1, 2, 3])
    assert first["prompt_ids"].size(1) != second["prompt_ids"].size(1)  # padded on the left when joined
    assert {"pixel_values", "image_grid_thw", "mm_token_type_ids", "num_images"} <= set(both)
    joined = join_rows([(first, [0, 1]), (second, [0, 1])], tok.pad_token_id)
    assert set(joined) == set(both)
    for key, value in both.items():
        if key != "num_items_in_batch":
            assert (joined[key] == value if isinstance(value, list) else torch.equal(joined[key], value)), key


def test_a_key_whose_rows_cannot_be_joined_is_named():
    def batch(width):
        return {"prompt_ids": torch.zeros(2, 3, dtype=torch.long),
                "completion_ids": torch.zeros(2, 4, dtype=torch.long), "pixel_stack": torch.zeros(2, 5, width)}

    with pytest.raises(ValueError, match="rollout key 'pixel_stack' cannot be joined"):
        join_rows([(batch(6), [0, 1]), (batch(7), [0])], pad_token_id=0)


# ---- training steps on rigged rewards -----------------------------------------------------------------

def rows_by_group(batch, tok) -> list[int]:
    """Positives per prompt among the rows that train (nonzero loss mask; w-reinforce: advantage > 0 = positive)."""
    trained = (batch["completion_mask"] * batch["tool_mask"]).sum(1) > 0
    per_prompt = {}
    for row in trained.nonzero().flatten().tolist():
        prompt = tok.decode(batch["prompt_ids"][row][batch["prompt_mask"][row].bool()])
        per_prompt.setdefault(prompt, []).append(bool(batch["advantages"][row] > 0))
    assert all(len(rows) == GENERATIONS for rows in per_prompt.values())  # whole groups only
    return sorted(sum(rows) for rows in per_prompt.values())


@pytest.mark.parametrize("group_filter", list(KEPT))
def test_a_step_trains_on_the_kept_groups_only(base_model, tok, tmp_path, group_filter):
    """4 groups x 4 rollouts with 0, 1, 3 and 4 positives: the batch TRL splits holds the kept groups' rows,
    and the log counts them; kept_positive_share by hand."""
    trainer, log_path = trainer_for(base_model, tok, tmp_path, "w-reinforce", "mask", rigged_groups(COUNTS),
                                    max_steps=1, group_filter=group_filter)
    batches = capture_batches(trainer)
    trainer.train()
    kept = KEPT[group_filter]
    assert len(batches) == 1 and rows_by_group(batches[0], tok) == kept
    log = pd.read_csv(log_path)
    assert log.loc[0, "groups_generated"] == GROUPS and log.loc[0, "groups_kept"] == len(kept)
    assert log.loc[0, "kept_positive_share"] == pytest.approx(sum(kept) / (GENERATIONS * len(kept)))
    assert log.loc[0, "kept_samples"] == log.loc[0, "rollout_kept"] == GENERATIONS * len(kept)


@pytest.mark.parametrize("objective, group_filter, steps", [
    ("psr", "all", 2),       # positives 0 + 1 + 3 + 4 = 8: ceil(8 / 4)
    ("psr", "mixed", 1),     # 1 + 3
    ("psr", "solved", 2),    # 1 + 3 + 4
    ("nsr", "all", 2),       # negatives 4 + 3 + 1 + 0 = 8
    ("nsr", "unsolved", 1),  # 4
    ("nsr", "mixed", 1),     # 3 + 1
    ("nsr", "solved", 1),    # 3 + 1 + 0
])
def test_subset_optimizer_steps_follow_the_kept_groups_samples(base_model, tok, tmp_path, objective, group_filter,
                                                               steps):
    trainer, log_path = trainer_for(base_model, tok, tmp_path, objective, "subset", rigged_groups(COUNTS), max_steps=4,
                                    group_filter=group_filter)
    trainer.train()
    assert adam_steps(trainer) == {steps}
    log = pd.read_csv(log_path)
    assert list(log["optimizer_step"]) == [1] * steps + [0] * (4 - steps)
    assert list(log["groups_kept"]) == [len(KEPT[group_filter])] * 4


ONE_UNSOLVED = (4, 0, 4, 4)  # one group of four without a positive sample


def test_refill_fills_the_batch_one_group_per_generation(base_model, tok, tmp_path):
    reward = rigged_groups(ONE_UNSOLVED)
    trainer, log_path = trainer_for(base_model, tok, tmp_path, "nsr", "mask", reward, max_steps=1,
                                    group_filter="unsolved", group_filter_max_batches=6)
    batches = capture_batches(trainer)
    trainer.train()
    assert len(reward.prompts) == 4  # four generations, then the batch is full: no more, whatever the cap
    assert all(sorted(prompts) == sorted(PROMPTS) for prompts in reward.prompts)  # refills: distinct train prompts
    trained = (batches[0]["completion_mask"] * batches[0]["tool_mask"]).sum(1) > 0
    assert int(trained.sum()) == GROUPS * GENERATIONS and len(trained) == GROUPS * GENERATIONS
    log = pd.read_csv(log_path)
    assert (log.loc[0, "groups_generated"], log.loc[0, "groups_kept"], log.loc[0, "kept_samples"]) == (16, 4, 16)
    assert log.loc[0, "kept_positive_share"] == 0


def test_the_cap_trains_on_what_survived_and_says_so(base_model, tok, tmp_path, capsys):
    """2 generations allowed: 2 groups of the 4 needed; stand-in rows fill TRL's 16 micro-batches of one row."""
    reward = rigged_groups(ONE_UNSOLVED)
    trainer, log_path = trainer_for(base_model, tok, tmp_path, "nsr", "mask", reward, max_steps=1,
                                    per_device_train_batch_size=1, steps_per_generation=16,
                                    group_filter="unsolved", group_filter_max_batches=2)
    batches = capture_batches(trainer)
    trainer.train()
    assert len(reward.prompts) == 2
    trained = (batches[0]["completion_mask"] * batches[0]["tool_mask"]).sum(1) > 0
    assert int(trained.sum()) == 2 * GENERATIONS and len(trained) == 16  # 8 rows, 8 stand-ins
    assert batches[0]["num_items_in_batch"] == (batches[0]["completion_mask"] * batches[0]["tool_mask"]).sum()
    log = pd.read_csv(log_path)
    assert (log.loc[0, "groups_generated"], log.loc[0, "groups_kept"]) == (8, 2)
    out = capsys.readouterr().out
    assert ("group_filter unsolved: step 1 kept 2 of 4 groups in 2 generation batch(es) (group_filter_max_batches 2): "
            "training on those") in out


@pytest.mark.parametrize("batch_filter", ["mask", "subset"])
def test_nothing_ever_survives(base_model, tok, tmp_path, capsys, batch_filter):
    """Every group solved, nsr on unsolved groups: the cap stops the refill; zero loss (mask) or no optimizer
    step (subset), the weights unchanged, no exception."""
    reward = rigged_groups((4, 4, 4, 4))
    trainer, log_path = trainer_for(base_model, tok, tmp_path, "nsr", batch_filter, reward, max_steps=4,
                                    group_filter="unsolved", group_filter_max_batches=3)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    assert len(reward.prompts) == 3
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    log = pd.read_csv(log_path)
    assert list(log["loss"]) == [0.0] * 4 and list(log["groups_kept"]) == [0] * 4
    assert list(log["groups_generated"]) == [12] * 4 and log["kept_positive_share"].isna().all()
    assert list(log["optimizer_step"]) == ([1] * 4 if batch_filter == "mask" else [0] * 4)
    outcome = "a zero loss" if batch_filter == "mask" else "no optimizer step"
    out = capsys.readouterr().out
    assert f"kept 0 of 4 groups in 3 generation batch(es) (group_filter_max_batches 3): {outcome}" in out


@pytest.mark.parametrize("objective, batch_filter, group_filter, pattern", [
    ("grpo", "mask", "mixed", (1, 2, 3, 1)),
    ("w-reinforce", "mask", "solved", (1, 4, 3, 2)),
    ("psr", "subset", "solved", (1, 4, 3, 2)),
    ("nsr", "subset", "unsolved", (0, 0, 0, 0)),
])
def test_a_filter_that_keeps_every_group_trains_the_unfiltered_run_bit_for_bit(base_model, tok, tmp_path, objective,
                                                                               batch_filter, group_filter, pattern):
    """The filtered path (rows taken and joined, masks and normaliser recomputed) keeping every group equals
    group_filter all, today's path: the same weights after two rollout batches, the same log."""
    weights, logs = {}, {}
    for name in ("all", group_filter):
        trainer, log_path = trainer_for(base_model, tok, tmp_path / name, objective, batch_filter,
                                        rigged_groups(pattern), max_steps=8, group_filter=name)
        trainer.train()
        weights[name] = [p.detach().clone() for p in trainer.model.parameters()]
        logs[name] = pd.read_csv(log_path).drop(columns="seconds")
    assert all(torch.equal(a, b) for a, b in zip(weights["all"], weights[group_filter]))
    assert any(not torch.equal(a, b) for a, b in zip(weights["all"], base_model.parameters()))
    pd.testing.assert_frame_equal(logs["all"], logs[group_filter])
    assert set(logs["all"]["groups_kept"]) == {GROUPS}


def test_refill_needs_a_dataset_it_can_index(base_model, tok, tmp_path):
    args = NSRConfig(objective="nsr", output_dir=str(tmp_path), num_generations=GENERATIONS, max_steps=1,
                     per_device_train_batch_size=4, use_cpu=True, report_to="none", group_filter="unsolved",
                     group_filter_max_batches=2)
    stream = Dataset.from_dict({"prompt": list(PROMPTS), "answer": list(PROMPTS.values())}).to_iterable_dataset()
    with pytest.raises(ValueError, match="needs a map-style train_dataset"):
        NSRTrainer(model=copy.deepcopy(base_model), reward_funcs=rigged_groups(COUNTS), args=args,
                   train_dataset=stream, processing_class=tok)
