"""`nsr base`: the start policy folder (model + tokenizer/processor, save_pretrained).

Two routes:
- a hub id or local folder: loaded with Auto* classes and saved as is (the paper-scale path);
- "embedded": a byte-level tokenizer and a tiny Qwen2 built locally (nsr.tiny), warm-started
  by a short supervised run on synthchart "warmstart" problems (cross-entropy on answer + EOS
  only), so RL starts from a policy with well-formed answers and partial skill. With a noisy
  teacher (``--warmstart-teacher-accuracy < 1``) every target keeps the answer's form but is
  right only sometimes (synthchart.teacher_answer): the prior of a pretrained LLM, sure of the
  form and unsure of the content, which the paper's NSR mechanism relies on.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

from nsr.io import InputError, atomic_path
from nsr.model_source import check_model, loading

EMBEDDED = "embedded"
WARMSTART_DEFAULTS = {"steps": 420, "lr": 1e-3, "batch_size": 32}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from nsr.data_cli import add_option_argument

    parser.add_argument("--model", default=EMBEDDED, help="'embedded' (tiny model, warm-started here) or a hub id / local folder")
    parser.add_argument("--output-dir", required=True, help="where the start policy folder is written")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--dataset-name", default="synthchart", help="task name or .parquet file with warm-start problems")
    add_option_argument(parser, "task option of the warm-start problems")
    parser.add_argument("--warmstart-steps", type=int, default=WARMSTART_DEFAULTS["steps"])
    parser.add_argument("--warmstart-lr", type=float, default=WARMSTART_DEFAULTS["lr"])
    parser.add_argument("--warmstart-batch-size", type=int, default=WARMSTART_DEFAULTS["batch_size"])
    parser.add_argument("--warmstart-teacher-accuracy", type=float, default=1.0,
                        help="noisy teacher: a warm-start target is the right answer with this probability, else a "
                             "plausible wrong one of the same form (synthchart.teacher_answer); 1 = always right")
    parser.add_argument("--warmstart-teacher-noise", type=float, default=0.3,
                        help="noisy teacher: how far its wrong answers stray (read noise, as a share of a table's "
                             "value spread: small = near misses only)")
    parser.add_argument("--warmstart-teacher-decay", type=float, default=1.0,
                        help="noisy teacher: its accuracy is multiplied by this per table value beyond two (bigger "
                             "tables are harder; 1 = the same accuracy for every table)")
    parser.add_argument("--num-threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def run(args: argparse.Namespace) -> None:
    from nsr.data_cli import parse_options

    out = prepare_base(args.model, args.output_dir, seed=args.seed, dataset_name=args.dataset_name,
                       task_options=parse_options(args.option),
                       warmstart_steps=args.warmstart_steps, warmstart_lr=args.warmstart_lr,
                       warmstart_batch_size=args.warmstart_batch_size, num_threads=args.num_threads,
                       teacher_accuracy=args.warmstart_teacher_accuracy, teacher_noise=args.warmstart_teacher_noise,
                       teacher_decay=args.warmstart_teacher_decay)
    print(f"wrote base policy to {out}")


def prepare_base(model: str, output_dir, seed: int = 2025, dataset_name: str = "synthchart",
                 task_options: dict | None = None,
                 warmstart_steps: int = WARMSTART_DEFAULTS["steps"], warmstart_lr: float = WARMSTART_DEFAULTS["lr"],
                 warmstart_batch_size: int = WARMSTART_DEFAULTS["batch_size"], num_threads: int | None = None,
                 teacher_accuracy: float = 1.0, teacher_noise: float = 0.3, teacher_decay: float = 1.0,
                 shape=None) -> Path:
    """Write the start policy to ``output_dir`` atomically and return its path."""
    import torch

    if warmstart_steps < 0 or warmstart_batch_size < 1 or not warmstart_lr > 0:
        raise InputError("warm-start needs --warmstart-steps >= 0, --warmstart-batch-size >= 1, --warmstart-lr > 0")
    if not 0 <= teacher_accuracy <= 1 or not teacher_noise > 0 or not 0 < teacher_decay <= 1:
        raise InputError("noisy teacher needs --warmstart-teacher-accuracy in [0, 1], --warmstart-teacher-noise > 0 "
                         "and --warmstart-teacher-decay in (0, 1]")
    if num_threads:
        torch.set_num_threads(num_threads)
    output_dir = Path(output_dir)
    if model == EMBEDDED:
        from nsr.data import load_problems
        from nsr.tiny import build_tiny_model, build_tokenizer

        # Validate the data (and the teacher) before building anything heavy.
        problems = (load_problems(dataset_name, split="warmstart", seed=seed, **(task_options or {}))
                    if warmstart_steps else None)
        targets = None
        if warmstart_steps and (teacher_accuracy < 1 or teacher_decay < 1):
            from nsr.tasks.synthchart import teacher_answer

            if not {"table", "question_type"} <= set(problems.columns):
                raise InputError(f"--warmstart-teacher-accuracy < 1: the noisy teacher knows synthchart problems only, "
                                 f"not {dataset_name!r}")
            rows = problems.to_dict("records")
            targets = lambda i, rng: teacher_answer(rows[i], rng, teacher_accuracy, teacher_noise, teacher_decay)  # noqa: E731
        tokenizer = build_tokenizer()
        policy = build_tiny_model(tokenizer, shape, seed=seed)
        losses = []
        if warmstart_steps:
            losses = warm_start(policy, tokenizer, list(problems["prompt"]), list(problems["answer"]),
                                steps=warmstart_steps, lr=warmstart_lr, batch_size=warmstart_batch_size, seed=seed,
                                targets=targets)
        with atomic_path(output_dir) as tmp:
            policy.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            with open(tmp / "warmstart_log.csv", "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["step", "loss", "lr", "seconds"])
                writer.writerows(losses)
        return output_dir
    policy, processor = load_pretrained(model)
    with atomic_path(output_dir) as tmp:
        policy.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    return output_dir


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


def warm_start(model, tokenizer, prompts: list[str], answers: list[str], steps: int, lr: float,
               batch_size: int, seed: int = 0, targets=None) -> list[tuple[int, float, float, float]]:
    """Supervised warm-start (AdamW, warmup + cosine decay); returns (step, loss, lr, seconds) rows.

    ``targets(i, rng)``, when given, draws the target of problem i afresh each time it is drawn
    (a noisy teacher); else the target is ``answers[i]``.
    """
    import random

    import torch
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    generator = torch.Generator().manual_seed(seed)
    teacher_rng = random.Random(f"warm-start-teacher/{seed}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    schedule = get_cosine_schedule_with_warmup(optimizer, max(1, math.ceil(0.05 * steps)), steps)
    model.train()
    rows, start = [], time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc="warm-start", mininterval=2.0)
    for step in bar:
        idx = torch.randint(len(prompts), (batch_size,), generator=generator).tolist()
        batch_answers = [targets(i, teacher_rng) if targets else answers[i] for i in idx]
        batch = encode_sft(tokenizer, [prompts[i] for i in idx], batch_answers)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        rows.append((step, loss.item(), schedule.get_last_lr()[0], round(time.perf_counter() - start, 3)))
        schedule.step()
        bar.set_postfix(loss=f"{rows[-1][1]:.3f}")
    model.eval()
    return rows
