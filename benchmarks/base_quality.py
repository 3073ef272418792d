"""Quality of the embedded start policy (run by hand; not a test).

    HF_HUB_OFFLINE=1 python benchmarks/base_quality.py                      # warm-start with the defaults, then measure
    HF_HUB_OFFLINE=1 python benchmarks/base_quality.py --model-dir results/models/base   # measure an existing folder

Prints warm-start seconds, exact Pass@1 at T=1 from one teacher-forced pass (mean of
p(answer + EOS | prompt)), and Pass@k for k = 1..256 from n sampled completions per test
problem (prompt prefilled once, its KV cache shared by the n samples), overall, per question
type, with the fraction of well-formed answers.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import defaultdict

import numpy as np
import torch

from nsr import base
from nsr.tasks import synthchart


def pass_at_k(n: int, c: np.ndarray, k: int) -> np.ndarray:
    try:
        from nsr.passk import pass_at_k as impl

        return np.asarray(impl(np.full_like(c, n), c, k), dtype=float)
    except ImportError:  # written concurrently; same unbiased estimator
        return np.array([1.0 if n - ci < k else 1 - np.prod(1 - k / np.arange(n - ci + 1, n + 1)) for ci in c])


def scorer():
    try:
        from nsr.rewards import score

        return lambda completion, answer: score(completion, answer) >= 1.0
    except ImportError:
        return lambda completion, answer: completion.strip() == answer


def well_formed(completion: str, row) -> bool:
    labels = set(json.loads(row["table"])["values"])
    text = completion.strip()
    if row["question_type"] == "rank":
        return len(text) == len(labels) and set(text) == labels
    if row["question_type"] in ("max", "min", "second"):
        return text in labels
    return re.fullmatch(r"-?\d+", text) is not None


@torch.no_grad()
def sample(model, tokenizer, prompts, n, max_new_tokens=16, prompts_per_call=4, seed=0):
    """n completions per prompt at T=1: prefill once, repeat the KV cache n times, sample token by token."""
    torch.manual_seed(seed)
    eos, out = tokenizer.eos_token_id, []
    for i in range(0, len(prompts), prompts_per_call):
        enc = tokenizer(prompts[i:i + prompts_per_call], return_tensors="pt", padding=True, add_special_tokens=False)
        mask = enc["attention_mask"]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        res = model(input_ids=enc["input_ids"], attention_mask=mask, position_ids=pos, use_cache=True)
        cache = res.past_key_values
        cache.batch_repeat_interleave(n)
        logits = res.logits[:, -1].repeat_interleave(n, 0)
        mask = mask.repeat_interleave(n, 0)
        pos = pos[:, -1:].repeat_interleave(n, 0)
        tokens, done = [], torch.zeros(len(mask), dtype=torch.bool)
        for _ in range(max_new_tokens):
            nxt = torch.multinomial(torch.softmax(logits.float(), -1), 1).squeeze(-1)
            nxt[done] = eos
            tokens.append(nxt)
            done |= nxt == eos
            if done.all():
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            pos = pos + 1
            res = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
            logits = res.logits[:, -1]
        seqs = torch.stack(tokens, 1).tolist()
        texts = [tokenizer.decode(s[:s.index(eos)] if eos in s else s) for s in seqs]
        out.extend(texts[j * n:(j + 1) * n] for j in range(len(texts) // n))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="measure this folder instead of warm-starting a new one")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--steps", type=int, default=base.WARMSTART_DEFAULTS["steps"])
    parser.add_argument("--lr", type=float, default=base.WARMSTART_DEFAULTS["lr"])
    parser.add_argument("--batch-size", type=int, default=base.WARMSTART_DEFAULTS["batch_size"])
    parser.add_argument("--num-threads", type=int, default=2)
    parser.add_argument("--num-test", type=int, default=200)
    parser.add_argument("--n", type=int, default=256)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.num_threads)
    folder = args.model_dir
    if folder is None:
        folder = tempfile.mkdtemp(prefix="nsr-base-")
        start = time.perf_counter()
        base.prepare_base("embedded", folder, seed=args.seed, warmstart_steps=args.steps, warmstart_lr=args.lr,
                          warmstart_batch_size=args.batch_size)
        print(f"warm-start: {time.perf_counter() - start:.1f} s ({args.steps} steps x {args.batch_size}, lr {args.lr}, "
              f"{args.num_threads} threads) -> {folder}")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = synthchart.load("test", args.num_test, seed=args.seed)
    prompts, answers = [r["prompt"] for r in rows], [r["answer"] for r in rows]

    p_exact = base.answer_logprob(model, tokenizer, prompts, answers).exp().numpy()
    start = time.perf_counter()
    completions = sample(model, tokenizer, prompts, args.n, seed=args.seed)
    seconds = time.perf_counter() - start
    correct, score = [], scorer()
    formed = []
    for r, comps in zip(rows, completions):
        correct.append(sum(score(c, r["answer"]) for c in comps))
        formed.append(np.mean([well_formed(c, r) for c in comps]))
    correct, formed = np.array(correct), np.array(formed)
    ks = [k for k in (1, 4, 16, 64, 256) if k <= args.n]
    print(f"sampling: {len(rows)} problems x {args.n} in {seconds:.1f} s")
    groups = defaultdict(list)
    for i, r in enumerate(rows):
        groups[r["question_type"]].append(i)
    for name, idx in [("all", list(range(len(rows))))] + sorted(groups.items()):
        idx = np.array(idx)
        cells = "  ".join(f"p@{k} {pass_at_k(args.n, correct[idx], k).mean():.3f}" for k in ks)
        print(f"{name:>7} (n={len(idx):3d})  exact p@1 {p_exact[idx].mean():.3f}  {cells}  well-formed {formed[idx].mean():.3f}")


if __name__ == "__main__":
    main()
