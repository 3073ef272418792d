"""Benchmark (a) of issue 3: `nsr sample`'s hf path vs plain generate(num_return_sequences=n).

Same model, same problems, same n, one problem at a time for the baseline, in one run:

    python benchmarks/sampling_speed.py                      # default tiny shape, random weights
    python benchmarks/sampling_speed.py --model results/models/base --num-problems 16

Prints samples/s of each route and the ratio (goal: >= 3x on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: the default tiny shape, random weights)")
    parser.add_argument("--dataset-name", default="synthchart")
    parser.add_argument("--num-problems", type=int, default=8)
    parser.add_argument("--num-samples", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--problems-per-call", type=int, default=None)
    parser.add_argument("--num-threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nsr.data import load_problems
    from nsr.sampling import SamplingSettings, encode_prompt, sample_to_file

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    workdir = Path(tempfile.mkdtemp(prefix="nsr-sampling-bench-"))
    model_dir = args.model
    if model_dir is None:
        from nsr.tiny import build_tiny_model, build_tokenizer

        tokenizer = build_tokenizer()
        model_dir = workdir / "model"
        build_tiny_model(tokenizer, seed=args.seed).save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
    problems = load_problems(args.dataset_name, split="test", num=args.num_problems, seed=2025)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    n, total = args.num_samples, args.num_samples * len(problems)
    prompt_ids = [encode_prompt(tokenizer, p) for p in problems["prompt"]]
    print(
        f"model {model_dir} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params), {len(problems)} problems, "
        f"prompt tokens {min(map(len, prompt_ids))}-{max(map(len, prompt_ids))}, n={n}, max_new_tokens={args.max_new_tokens}, "
        f"threads={torch.get_num_threads()}",
        flush=True,
    )

    # Baseline: plain generate, one problem at a time, n return sequences.
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    plain_chars = 0
    with torch.inference_mode():
        for ids in prompt_ids:
            out = model.generate(
                torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                do_sample=args.temperature > 0, temperature=args.temperature or None, top_p=1.0, top_k=0,
                num_return_sequences=n, max_new_tokens=args.max_new_tokens,
            )
            texts = tokenizer.batch_decode(out[:, len(ids):], skip_special_tokens=True)
            plain_chars += sum(map(len, texts))
    plain_s = time.perf_counter() - start

    # `nsr sample`'s hf path end to end: shared prefill, decode loop, scoring, chunked parquet, final file.
    settings = SamplingSettings(n, args.temperature, 1.0, args.max_new_tokens, args.seed)
    start = time.perf_counter()
    frame = sample_to_file(model_dir, problems, workdir / "samples.parquet", settings, backend="hf",
                           problems_per_call=args.problems_per_call, progress=False)
    ours_s = time.perf_counter() - start
    ours_chars = int(frame["completion"].str.len().sum())

    print(f"plain generate(num_return_sequences={n}): {total / plain_s:8.0f} samples/s  ({plain_s:.2f} s, {plain_chars / total:.1f} chars/completion)")
    print(f"nsr sample --backend hf (shared cache):  {total / ours_s:8.0f} samples/s  ({ours_s:.2f} s, {ours_chars / total:.1f} chars/completion)")
    print(f"ratio: {plain_s / ours_s:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
