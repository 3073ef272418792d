"""`nsr base`: the start policy folder (model + tokenizer/processor, save_pretrained).

Two routes:
- a hub id or local folder: loaded with Auto* classes and saved as is (the paper-scale path);
- "embedded": a byte-level tokenizer and a tiny Qwen2 built locally (nsr.tiny), warm-started
  by a short supervised run on synthchart "warmstart" problems (cross-entropy on answer + EOS
  only), so RL starts from a policy with well-formed answers and partial skill. With a noisy
  teacher (``--warmstart-teacher-accuracy < 1``, nsr.teacher) every target keeps the answer's
  form but is right only sometimes: the prior of a pretrained LLM, sure of the form and unsure
  of the content, which the paper's NSR mechanism relies on. In phases (nsr.warmstart, e.g.
  clean targets until the skill is learned, then a noisy teacher with a blind spot, or one whose
  accuracy falls with the problem's difficulty) the base gets skill, uncertainty and problems
  whose right answer lies in its tail.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

from nsr.io import InputError, atomic_path
from nsr.model_source import check_model, loading
from nsr.warmstart import (CHOICES, DEFAULTS, EMBEDDED, PHASE_KEYS, Phase, flat_flag, make_phases, parse_phase_flag,
                           study_warmstart_options, warmstart_flags)

FLAT_HELP = {
    "teacher_accuracy": "noisy teacher: a warm-start target is the right answer with this probability, else a "
                        "plausible wrong one of the same form (nsr.teacher); 1 = always right",
    "teacher_noise": "noisy teacher: how far its wrong answers stray (read noise, as a share of a table's value "
                     "spread: small = near misses only)",
    "teacher_decay": "noisy teacher: its accuracy is multiplied by this per table value beyond two (bigger tables "
                     "are harder; 1 = the same accuracy for every table)",
    "blind_spot": "the teacher's systematic error (nsr.teacher.BLIND_SPOTS): last_unseen overlooks the table's last "
                  "entry, no_carry adds without carrying, coarse compares values by their tens digit only (ties to "
                  "the first listed)",
    "blind_spot_escape": "probability the teacher escapes its blind spot on a problem it changes (last_unseen: sees "
                         "the last entry; no_carry: carries; coarse: sees the units)",
    "teacher_difficulty": "gap: on order questions the teacher's accuracy falls with the problem's difficulty (the "
                          "smallest gap between two values the answer depends on; nsr.teacher.difficulty) and when "
                          "wrong it mostly gives one near miss (that pair swapped); none: the noisy teacher",
    "teacher_hard_gap": "difficulty teacher: at gaps up to this (value units) it is right with "
                        "--warmstart-teacher-hard-accuracy",
    "teacher_easy_gap": "difficulty teacher: from this gap on it is right with --warmstart-teacher-accuracy (linear "
                        "in between)",
    "teacher_hard_accuracy": "difficulty teacher: its accuracy on the hardest problems (<= teacher accuracy)",
    "teacher_systematic": "difficulty teacher: when wrong, the probability of the systematic near miss (else another "
                          "wrong answer)",
}
LOG_COLUMNS = ("phase", "step", "loss", "lr", "seconds")  # warmstart_log.csv, one row per step


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from nsr.data_cli import add_option_argument

    parser.add_argument("--model", default=EMBEDDED, help="'embedded' (tiny model, warm-started here) or a hub id / local folder")
    parser.add_argument("--output-dir", required=True, help="where the start policy folder is written")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--dataset-name", default="synthchart", help="task name or .parquet file with warm-start problems")
    add_option_argument(parser, "task option of the warm-start problems")
    # Flat settings: one phase, or the defaults of every --warmstart-phase.
    for key, kind in PHASE_KEYS.items():
        parser.add_argument(flat_flag(key), dest=f"warmstart_{key}",
                            type=kind, default=DEFAULTS[key], help=FLAT_HELP.get(key),
                            choices=CHOICES.get(key))
    parser.add_argument("--warmstart-phase", action="append", default=None, metavar="KEY=VALUE,...",
                        help="one warm-start phase, in order (repeat for more): its settings over the flat ones, e.g. "
                             "'steps=600,learning_rate=3e-4,teacher_accuracy=0.6,blind_spot=last_unseen,"
                             f"blind_spot_escape=0.02'; keys: {', '.join(PHASE_KEYS)}")
    parser.add_argument("--num-threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def run(args: argparse.Namespace) -> None:
    from nsr.data_cli import parse_options

    out = prepare_from_args(args, parse_options(args.option))
    print(f"wrote base policy to {out}")


def prepare_from_args(args: argparse.Namespace, task_options: dict | None) -> Path:
    """prepare_base with `nsr base`'s parsed flags."""
    phases = [parse_phase_flag(text) for text in args.warmstart_phase] if args.warmstart_phase else None
    return prepare_base(args.model, args.output_dir, seed=args.seed, dataset_name=args.dataset_name,
                        task_options=task_options,
                        warmstart_steps=args.warmstart_steps, warmstart_lr=args.warmstart_learning_rate,
                        warmstart_batch_size=args.warmstart_batch_size, num_threads=args.num_threads,
                        teacher_accuracy=args.warmstart_teacher_accuracy, teacher_noise=args.warmstart_teacher_noise,
                        teacher_decay=args.warmstart_teacher_decay, blind_spot=args.warmstart_blind_spot,
                        blind_spot_escape=args.warmstart_blind_spot_escape,
                        teacher_difficulty=args.warmstart_teacher_difficulty,
                        teacher_hard_gap=args.warmstart_teacher_hard_gap,
                        teacher_easy_gap=args.warmstart_teacher_easy_gap,
                        teacher_hard_accuracy=args.warmstart_teacher_hard_accuracy,
                        teacher_systematic=args.warmstart_teacher_systematic, phases=phases)


def prepare_base(model: str, output_dir, seed: int = 2025, dataset_name: str = "synthchart",
                 task_options: dict | None = None,
                 warmstart_steps: int = DEFAULTS["steps"], warmstart_lr: float = DEFAULTS["learning_rate"],
                 warmstart_batch_size: int = DEFAULTS["batch_size"], num_threads: int | None = None,
                 teacher_accuracy: float = 1.0, teacher_noise: float = 0.3, teacher_decay: float = 1.0,
                 blind_spot: str = "none", blind_spot_escape: float = 0.0,
                 teacher_difficulty: str = DEFAULTS["teacher_difficulty"],
                 teacher_hard_gap: float = DEFAULTS["teacher_hard_gap"],
                 teacher_easy_gap: float = DEFAULTS["teacher_easy_gap"],
                 teacher_hard_accuracy: float = DEFAULTS["teacher_hard_accuracy"],
                 teacher_systematic: float = DEFAULTS["teacher_systematic"], phases: list[dict] | None = None,
                 shape=None) -> Path:
    """Write the start policy to ``output_dir`` atomically and return its path.

    The flat warm-start settings are one phase, or the defaults of each of ``phases`` (settings
    dicts, nsr.warmstart.PHASE_KEYS)."""
    import torch

    flat = {"steps": warmstart_steps, "learning_rate": warmstart_lr, "batch_size": warmstart_batch_size,
            "teacher_accuracy": teacher_accuracy, "teacher_noise": teacher_noise, "teacher_decay": teacher_decay,
            "blind_spot": blind_spot, "blind_spot_escape": blind_spot_escape, "teacher_difficulty": teacher_difficulty,
            "teacher_hard_gap": teacher_hard_gap, "teacher_easy_gap": teacher_easy_gap,
            "teacher_hard_accuracy": teacher_hard_accuracy, "teacher_systematic": teacher_systematic}
    warmstart = make_phases(flat, phases)
    steps = sum(phase.steps for phase in warmstart)
    if num_threads:
        torch.set_num_threads(num_threads)
    output_dir = Path(output_dir)
    if model == EMBEDDED:
        from nsr.data import load_problems
        from nsr.tiny import build_tiny_model, build_tokenizer

        # Validate the data (and the teacher) before building anything heavy.
        problems = load_problems(dataset_name, split="warmstart", seed=seed, **(task_options or {})) if steps else None
        rows = None
        if any(phase.steps and not phase.teacher.perfect for phase in warmstart):
            if not {"table", "question_type"} <= set(problems.columns):
                raise InputError(f"warm-start teacher (teacher_accuracy or teacher_decay < 1, a blind spot or "
                                 f"teacher_difficulty): it knows synthchart problems only, not {dataset_name!r}")
            make_phases(flat, phases, question_types=set(problems["question_type"]))  # each teacher has work
            rows = problems.to_dict("records")
        tokenizer = build_tokenizer()
        policy = build_tiny_model(tokenizer, shape, seed=seed)
        losses = []
        if steps:
            losses = warm_start(policy, tokenizer, list(problems["prompt"]), list(problems["answer"]), warmstart,
                                seed=seed, rows=rows)
        with atomic_path(output_dir) as tmp:
            policy.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            with open(tmp / "warmstart_log.csv", "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(LOG_COLUMNS)
                writer.writerows(losses)
        return output_dir
    policy, processor = load_pretrained(model)
    with atomic_path(output_dir) as tmp:
        policy.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    return output_dir


def prepare_study_base(config: dict, output_dir, num_threads: int | None = None) -> Path:
    """The base a study config's `base` job writes, built in this process (the same flags as the base
    rule: warmstart_flags), for benchmarks that try bases without a study."""
    from nsr.cli import ArgumentParser

    parser = ArgumentParser(prog="nsr base")
    add_arguments(parser)
    args = parser.parse_args(["--model", config["base"]["model"], "--output-dir", str(output_dir),
                              "--seed", str(config["base"]["seed"]),
                              *warmstart_flags(config["base"].get("warmstart") or {})])
    args.num_threads = num_threads
    return prepare_from_args(args, study_warmstart_options(config))


def load_pretrained(name: str):
    """(model, tokenizer or processor) from a hub id or local folder, with the Auto* classes."""
    from nsr.vlm import load_policy, load_processing

    check_model(name)
    with loading(name):
        return load_policy(name), load_processing(name)


def encode_sft(tokenizer, prompts: list[str], answers: list[str]):
    """Left-padded prompt+answer+EOS batch; labels only on answer and EOS tokens.

    position_ids follow the attention mask, as generate() computes them for left padding, so
    training and sampling see the same positions.
    """
    import torch

    seqs, label_seqs = [], []
    p_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(list(answers), add_special_tokens=False)["input_ids"]
    for p, a in zip(p_ids, a_ids):
        a = a + [tokenizer.eos_token_id]
        seqs.append(p + a)
        label_seqs.append([-100] * len(p) + a)
    width = max(map(len, seqs))
    input_ids = torch.full((len(seqs), width), tokenizer.pad_token_id)
    labels = torch.full((len(seqs), width), -100)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (s, lab) in enumerate(zip(seqs, label_seqs)):
        input_ids[i, width - len(s):] = torch.tensor(s)
        labels[i, width - len(s):] = torch.tensor(lab)
        mask[i, width - len(s):] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": mask, "position_ids": position_ids, "labels": labels}


def answer_logprob(model, tokenizer, prompts: list[str], answers: list[str], batch_size: int = 256):
    """log p(answer + EOS | prompt) per problem in one teacher-forced pass: exact Pass@1 at T=1 is its exp's mean."""
    import torch

    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(prompts), batch_size):
            batch = encode_sft(tokenizer, prompts[i:i + batch_size], answers[i:i + batch_size])
            labels = batch.pop("labels")
            logits = model(**batch).logits[:, :-1].float()
            target = labels[:, 1:]
            logp = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            out.append((logp * (target != -100)).sum(-1))
    return torch.cat(out)


def warm_start(model, tokenizer, prompts: list[str], answers: list[str], phases: list[Phase], seed: int = 0,
               rows: list[dict] | None = None) -> list[tuple[int, int, float, float, float]]:
    """Supervised warm-start in phases; returns (phase, step, loss, lr, seconds) rows (LOG_COLUMNS),
    steps counted over all phases.

    Each phase starts a fresh AdamW with its own warmup + cosine decay to 0: a phase is a
    warm-start of its own from where the last one ended (as the toy study ran them), so its
    learning rate means what it says rather than a point on the previous schedule. A phase's
    teacher (nsr.teacher) draws the target of problem i from ``rows[i]`` afresh each time it is
    drawn; a perfect teacher's target is ``answers[i]``. Problem draws and teacher draws continue
    from phase to phase, so one phase is the warm-start it always was.
    """
    import random

    import torch
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    generator = torch.Generator().manual_seed(seed)
    teacher_rng = random.Random(f"warm-start-teacher/{seed}")
    model.train()
    log, start, step = [], time.perf_counter(), 0
    for number, phase in enumerate(phases, 1):
        if not phase.steps:
            continue
        teacher = None if phase.teacher.perfect else phase.teacher
        optimizer = torch.optim.AdamW(model.parameters(), lr=phase.learning_rate, betas=(0.9, 0.98), weight_decay=0.01)
        schedule = get_cosine_schedule_with_warmup(optimizer, max(1, math.ceil(0.05 * phase.steps)), phase.steps)
        desc = "warm-start" if len(phases) == 1 else f"warm-start phase {number}/{len(phases)}"
        bar = tqdm(range(phase.steps), desc=desc, mininterval=2.0)
        for _ in bar:
            step += 1
            idx = torch.randint(len(prompts), (phase.batch_size,), generator=generator).tolist()
            batch_answers = [teacher.target(rows[i], teacher_rng) if teacher else answers[i] for i in idx]
            batch = encode_sft(tokenizer, [prompts[i] for i in idx], batch_answers)
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            log.append((number, step, loss.item(), schedule.get_last_lr()[0], round(time.perf_counter() - start, 3)))
            schedule.step()
            bar.set_postfix(loss=f"{log[-1][2]:.3f}")
    model.eval()
    return log
