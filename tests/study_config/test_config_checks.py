"""nsr.study_config.checks: every config mistake is one line naming the key (the workflow runs
these checks before any job; tests/test_workflow.py shows a dry run stopping on them)."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nsr.study_config import config_errors, load_yaml, report

REPO = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())


def pool(path: Path, rows: int) -> str:
    pd.DataFrame({"problem_id": [f"p{i}" for i in range(rows)], "prompt": ["A=1 B=2|max?"] * rows,
                  "answer": ["B"] * rows}).to_parquet(path)
    return str(path)


def model_without_config(root: Path) -> str:
    (root / "nocfg").mkdir()
    (root / "nocfg" / "tokenizer.json").write_text("{}")
    return str(root / "nocfg")


# case: (edit(config, tmp_path), the exact line reported). Every mistake the issue lists, and the
# ranges each `nsr` command enforces.
MISTAKES = {
    "method key typo": (lambda c, _: c["methods"]["w-reinforce"].update(lamda_psr=0.5),
                        "methods.w-reinforce.lamda_psr: unknown key (did you mean lambda_psr?)"),
    "train key typo": (lambda c, _: c["train"].update(eval_evry=1),
                       "train.eval_evry: unknown key (did you mean eval_every?)"),
    "seeds in a method": (lambda c, _: c["methods"]["nsr"].update(seeds=[1, 2]),
                          "methods.nsr.seeds: not a per-method key (train.seeds applies to every method)"),
    "threshold 0 on the base": (lambda c, _: c["methods"]["base"].update(reward_threshold=0),
                                "methods.base.reward_threshold: must be > 0, got 0"),
    "training key on the base": (lambda c, _: c["methods"]["base"].update(reward_threshold=0.3),
                                 "methods.base.reward_threshold: objective none evaluates the base model "
                                 "untrained; training keys do not apply"),
    "threshold above 1": (lambda c, _: c["train"].update(reward_threshold=1.5),
                          "train.reward_threshold: must be <= 1, got 1.5"),
    "noisy teacher off synthchart": (lambda c, t: (c["data"].update(dataset=pool(t / "p.parquet", 40), options={}),
                                                  c["data"].pop("extra_test_sets"),
                                                  c["base"]["warmstart"].update(teacher_accuracy=0.3)),
                                     "base.warmstart.teacher_accuracy: the warm-start teacher (noise, blind spots) warm-starts the embedded model "
                                     "on synthchart only (base.model: embedded, data.dataset: synthchart)"),
    "teacher decay on a hub model": (lambda c, _: c["base"].update(model="org/model", warmstart={"teacher_decay": 0.5}),
                                     "base.warmstart.teacher_decay: the warm-start teacher (noise, blind spots) warm-starts the embedded model "
                                     "on synthchart only (base.model: embedded, data.dataset: synthchart)"),
    "teacher accuracy above 1": (lambda c, _: c["base"]["warmstart"].update(teacher_accuracy=1.5),
                                 "base.warmstart.teacher_accuracy: must be <= 1, got 1.5"),
    "phase learning rate 0": (lambda c, _: c["base"]["warmstart"].update(phases=[{"steps": 5}, {"learning_rate": 0}]),
                              "base.warmstart.phases[1].learning_rate: must be > 0, got 0"),
    "phase key typo": (lambda c, _: c["base"]["warmstart"].update(phases=[{"stesp": 5}]),
                       "base.warmstart.phases[0].stesp: unknown key (did you mean steps?)"),
    "unknown blind spot": (lambda c, _: c["base"]["warmstart"].update(phases=[{}, {"blind_spot": "last_seen"}]),
                           "base.warmstart.phases[1].blind_spot: 'last_seen' is not one of none, last_unseen, "
                           "no_carry, coarse (did you mean last_unseen?)"),
    "no phases": (lambda c, _: c["base"]["warmstart"].update(phases=[]), "base.warmstart.phases: must not be empty"),
    "difficulty teacher typo": (lambda c, _: c["base"]["warmstart"].update(teacher_difficulty="gaps"),
                                "base.warmstart.teacher_difficulty: 'gaps' is not one of none, gap "
                                "(did you mean gap?)"),
    "systematic share above 1": (lambda c, _: c["base"]["warmstart"].update(teacher_systematic=1.5),
                                 "base.warmstart.teacher_systematic: must be <= 1, got 1.5"),
    "difficulty curve upside down": (lambda c, _: c["base"]["warmstart"].update(phases=[{}, {
                                         "teacher_difficulty": "gap", "teacher_hard_gap": 8, "teacher_easy_gap": 5}]),
                                     "base.warmstart.phases[1].teacher_hard_gap: must be < teacher_easy_gap (5), "
                                     "got 8"),
    "sum blind spot without sums": (lambda c, _: c["base"]["warmstart"].update(blind_spot="no_carry"),
                                    "base.warmstart.blind_spot: no_carry acts on sum questions only; the warm-start "
                                    "problems have none (question types: max, min)"),
    "difficulty teacher on a hub model": (lambda c, _: c["base"].update(model="org/model", warmstart={
                                              "teacher_difficulty": "gap"}),
                                          "base.warmstart.teacher_difficulty: the warm-start teacher (noise, blind "
                                          "spots) warm-starts the embedded model on synthchart only (base.model: "
                                          "embedded, data.dataset: synthchart)"),
    "blind spot on a hub model": (lambda c, _: c["base"].update(model="org/model", warmstart={
                                      "phases": [{"steps": 5}, {"steps": 5, "blind_spot": "no_carry"}]}),
                                  "base.warmstart.phases[1].blind_spot: the warm-start teacher (noise, blind spots) "
                                  "warm-starts the embedded model on synthchart only (base.model: embedded, "
                                  "data.dataset: synthchart)"),
    "teacher key typo": (lambda c, _: c["base"]["warmstart"].update(teacher_nosie=0.3),
                         "base.warmstart.teacher_nosie: unknown key (did you mean teacher_noise?)"),
    "top-level typo": (lambda c, _: c.update(sampleing=c.pop("sampling")),
                       "sampleing: unknown key (did you mean sampling?)"),
    "unknown CPU code path": (lambda c, _: c.update(numerics={"cpu_capability": "avx3"}),
                              "numerics.cpu_capability: 'avx3' is not one of avx2, default, avx512, native "
                              "(did you mean avx2?)"),
    "missing key": (lambda c, _: c["data"].pop("test_size"), "data.test_size: missing (required)"),
    "missing dataset file": (lambda c, _: c["data"].update(dataset="missing.parquet"),
                             "data.dataset: no such file missing.parquet"),
    "unknown task": (lambda c, _: c["data"].update(dataset="synthchrt"),
                     "data.dataset: unknown task 'synthchrt' (did you mean synthchart?); known tasks: "
                     "synthchart, evochart, chartqa, math, or a .parquet problem file"),
    "unknown task option": (lambda c, _: c["data"].update(options={"typs": "max"}),
                            "data.options.typs: unknown option of task synthchart (did you mean types?)"),
    "bad task option value": (lambda c, _: c["data"].update(options={"max_categories": "four"}),
                              "data.options: synthchart: option 'max_categories' must be an integer, got 'four'"),
    "options on a parquet file": (lambda c, t: c["data"].update(dataset=pool(t / "p.parquet", 40), options={"a": 1}),
                                  "data.options: a .parquet dataset takes no task options"),
    "task without a data source": (lambda c, _: (c["data"].update(dataset="evochart", options={}),
                                                 c["data"].pop("extra_test_sets")),
                                   "data.options: evochart: no data source; set option 'hub_id' (a hub dataset or a "
                                   "local save_to_disk folder) or 'train_path'/'path' (JSON/JSONL) plus 'image_root'"),
    "missing task data file": (lambda c, _: (c["data"].update(dataset="math", options={"path": "m.json"}),
                                             c["data"].pop("extra_test_sets")),
                               "data.options: math: option 'path': data file m.json does not exist"),
    "missing base model folder": (lambda c, _: c["base"].update(model="./models/qwen"),
                                  "base.model: ./models/qwen: no such model folder (a hub id looks like org/name)"),
    "model folder without config.json": (lambda c, t: c["base"].update(model=model_without_config(t)),
                                         "base.model: {tmp}/nocfg: not a model folder (no config.json)"),
    "missing accelerate config": (lambda c, _: c["train"].update(accelerate_config="config/accelerate/ddp.yaml"),
                                  "train.accelerate_config: no such file config/accelerate/ddp.yaml (relative paths "
                                  "start at the workflow folder, e.g. config/accelerate/single_process.yaml)"),
    "extra_args unknown flag": (lambda c, _: c["train"].update(extra_args="--checkpoint-evry 5"),
                                "train.extra_args: nsr train cannot parse it: unrecognized arguments: "
                                "--checkpoint-evry 5 (see nsr train --help)"),
    "extra_args sets a config key": (lambda c, _: c["methods"]["nsr"].update(extra_args="--learning-rate 1e-3"),
                                     "methods.nsr.extra_args: --learning-rate is set by the workflow from the config "
                                     "key learning_rate; set that instead"),
    "extra_args out of range": (lambda c, _: c["train"].update(extra_args="--checkpoint-every 0"),
                                "train.extra_args: nsr train would stop: --checkpoint-every must be >= 1"),
    "extra_args bad quoting": (lambda c, _: c["train"].update(extra_args="--bf16 '"),
                               "train.extra_args: nsr train cannot parse it: No closing quotation"),
    "no bootstrap": (lambda c, _: c["evaluation"].update(num_bootstrap=0),
                     "evaluation.num_bootstrap: must be >= 1, got 0"),
    "100 000 synthchart problems": (lambda c, _: c["data"].update(test_size=100_000),
                                    "data.test_size: synthchart: 100000 test problems asked for; the limit is "
                                    "20000 per split"),
    "options too narrow for the size": (
        lambda c, _: c["data"].update(options={"types": "max", "max_categories": 2, "value_range": "1,3",
                                               "shuffle_labels": False}, train_size=1),
        "data.test_size: synthchart: 4 test problems asked for, but these options give only about 1 distinct "
        "test problems (allow more categories, values or question types)"),
    "parquet pool too small for the test set": (
        lambda c, t: (c["data"].update(dataset=pool(t / "p.parquet", 18), options={}), c["data"].pop("extra_test_sets")),
        "data.test_size: 4 problems asked for, but {tmp}/p.parquet holds 18 (16 of them are training problems)"),
    "extra test set too large for the pool": (
        lambda c, t: c["data"].update(dataset=pool(t / "p.parquet", 21), options={},
                                      extra_test_sets={"more": {"size": 9}}),
        "data.extra_test_sets.more.size: 9 problems asked for, but {tmp}/p.parquet holds 21 (16 of them are "
        "training problems)"),
    "max_steps 0": (lambda c, _: c["train"].update(max_steps=0),
                    "train.max_steps: 0 is not allowed (-1 = as many as num_epochs give, else >= 1)"),
    "number written as YAML text": (lambda c, _: c["train"].update(learning_rate="1e-4"),
                                    "train.learning_rate: must be number, got '1e-4' (YAML reads this as text: "
                                    "write it with a decimal point, e.g. 1.0e-4)"),
    "float size": (lambda c, _: c["data"].update(train_size=16.0), "data.train_size: must be integer, got 16.0"),
    "eval set larger than the test set": (lambda c, _: c["train"].update(eval_size=9),
                                          "train.eval_size: 9 held-out problems asked for, but data.test_size is 4"),
    "evaluation that never runs": (lambda c, _: c["methods"]["psr"].update(eval_every=5),
                                   "methods.psr.eval_every: 5 is more than max_steps (2): held-out evaluation would "
                                   "never run (0 turns it off)"),
    "unknown objective": (lambda c, _: c["methods"].update(foo={"objective": "ppo"}),
                          "methods.foo.objective: 'ppo' is not one of none, grpo, psr, nsr, w-reinforce"),
    "objective typo": (lambda c, _: c["methods"]["nsr"].update(objective="nrs"),
                       "methods.nsr.objective: 'nrs' is not one of none, grpo, psr, nsr, w-reinforce (did you mean nsr?)"),
    "extra test set named as the study's": (lambda c, _: c["data"]["extra_test_sets"].update(mix={"size": 2}),
                                            "data.extra_test_sets.mix: the name is the study's own test set "
                                            "(data.test_name); give it another name"),
    "sampling top_p 0": (lambda c, _: c["sampling"].update(top_p=0), "sampling.top_p: must be > 0, got 0"),
    "grpo on unsolved groups": (lambda c, _: c["methods"]["grpo"].update(group_filter="unsolved"),
                                "methods.grpo.group_filter: 'unsolved' keeps only groups with no positive sample, "
                                "from which objective 'grpo' learns nothing (every advantage is zero)"),
    "psr on unsolved groups from train": (lambda c, _: (c["train"].update(group_filter="unsolved"),
                                                        c["methods"]["grpo"].update(group_filter="mixed")),
                                          "train.group_filter (method psr): 'unsolved' keeps only groups with no "
                                          "positive sample, from which objective 'psr' learns nothing (it learns from "
                                          "positive samples only)"),
    "group filter typo": (lambda c, _: c["methods"]["nsr"].update(group_filter="unsolve"),
                          "methods.nsr.group_filter: 'unsolve' is not one of all, mixed, unsolved, solved "
                          "(did you mean unsolved?)"),
    "negative refill cap": (lambda c, _: c["train"].update(group_filter_max_batches=-1),
                            "train.group_filter_max_batches: must be >= 0, got -1"),
    "credit typo": (lambda c, _: c["data"]["options"].update(credit="gradd"),
                    "data.options: synthchart: option 'credit' must be one of ['binary', 'graded'], got 'gradd'"),
    "chart task credit value": (lambda c, _: (c["data"].update(dataset="evochart",
                                                               options={"hub_id": "org/evo", "credit": "ranking"}),
                                              c["data"].pop("extra_test_sets")),
                                "data.options: evochart: option 'credit' must be one of ['binary', 'graded'], "
                                "got 'ranking'"),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_each_mistake_is_one_line_naming_the_key(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative data paths are taken from Snakemake's working directory
    edit, expected = MISTAKES[case]
    config = copy.deepcopy(TINY)
    edit(config, tmp_path)
    assert config_errors(config, REPO) == [expected.format(tmp=tmp_path)]


def test_group_filter_flags_reach_nsr_train_only_when_set():
    """A study without the keys keeps its train commands (and Snakemake params: nothing re-runs); a method's
    group_filter reaches its own command only."""
    from nsr.study_config import method_settings, train_arguments
    from nsr.train_cli import build_parser

    def parsed(config, method):
        command = " ".join(train_arguments(method_settings(config, method), "t.parquet")).split()
        return command, build_parser().parse_args([*command, "--model", "m", "--dataset-name", "d"])

    config = copy.deepcopy(TINY)
    config["methods"]["nsr-unsolved"] = {"objective": "nsr", "group_filter": "unsolved", "group_filter_max_batches": 3}
    assert config_errors(config, REPO) == []
    command, args = parsed(config, "nsr")
    assert not [flag for flag in command if flag.startswith("--group-filter")]
    assert (args.group_filter, args.group_filter_max_batches) == ("all", 0)
    command, args = parsed(config, "nsr-unsolved")
    assert (args.group_filter, args.group_filter_max_batches) == ("unsolved", 3)


def test_group_filter_example_is_the_embedded_default_plus_three_methods():
    default = load_yaml(REPO / "config" / "config.yaml")
    example = load_yaml(REPO / "config" / "examples" / "group_filters.yaml")
    added = {name: example["methods"].pop(name) for name in ("nsr-unsolved", "psr-solved", "grpo-mixed")}
    assert example == default  # every other key as the embedded default's: one study, three more curves
    assert {name: (m["objective"], m["group_filter"]) for name, m in added.items()} == {
        "nsr-unsolved": ("nsr", "unsolved"), "psr-solved": ("psr", "solved"), "grpo-mixed": ("grpo", "mixed")}


def test_shipped_configs_pass(tmp_path, monkeypatch):
    assert config_errors(TINY, REPO) == []
    assert config_errors(load_yaml(REPO / "config" / "config.yaml"), REPO) == []
    assert config_errors(load_yaml(REPO / "config" / "examples" / "group_filters.yaml"), REPO) == []
    math = load_yaml(REPO / "config" / "experiments" / "qwen2.5-math-7b-math.yaml")
    assert config_errors(math, REPO) == []
    monkeypatch.chdir(tmp_path)
    evochart = load_yaml(REPO / "config" / "experiments" / "qwen2.5-vl-3b-evochart.yaml")
    assert config_errors(evochart, REPO) == [
        "data.options: evochart: option 'image_root': data/evochart/images is not a folder"]
    (tmp_path / "data" / "evochart" / "images").mkdir(parents=True)
    assert config_errors(evochart, REPO) == [
        "data.options: evochart: option 'train_path': data file data/evochart/train.json does not exist"]


def test_a_clean_phase_then_the_difficulty_teacher_with_the_coarse_blind_spot_passes():
    config = copy.deepcopy(TINY)
    config["base"]["warmstart"].update(teacher_hard_gap=30, phases=[{"steps": 5}, {
        "steps": 5, "teacher_difficulty": "gap", "teacher_easy_gap": 40, "teacher_accuracy": 0.9,
        "teacher_hard_accuracy": 0.05, "teacher_systematic": 0.8, "blind_spot": "coarse", "blind_spot_escape": 0.1}])
    assert config_errors(config, REPO) == []


@pytest.mark.parametrize("dataset, options", [("synthchart", {"types": "max,rank", "credit": "graded"}),
                                              ("evochart", {"hub_id": "org/evo", "credit": "graded"}),
                                              ("chartqa", {"credit": "binary"})])
def test_graded_credit_is_a_known_task_option(dataset, options):
    config = copy.deepcopy(TINY)
    config["data"].update(dataset=dataset, options=options)
    if dataset != "synthchart":
        config["data"].pop("extra_test_sets")
    assert config_errors(config, REPO) == []


def test_several_mistakes_are_all_listed_briefly():
    config = copy.deepcopy(TINY)
    for name in ("grpo", "psr", "nsr", "w-reinforce"):
        config["methods"][name].update(lamda_psr=0.2, learnig_rate=1e-3)
    errors = config_errors(config, REPO)
    assert len(errors) == 8
    message = report(errors + ["one more"], "my.yaml")
    assert message.splitlines()[0] == "config my.yaml: 9 mistakes"
    assert message.splitlines()[-1] == "  ... and 1 more" and len(message.splitlines()) == 10
