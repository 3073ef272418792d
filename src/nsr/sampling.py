"""`nsr sample`: n samples per test problem, scored; resumable; backends hf and vllm.

hf: each prompt is prefilled ONCE, its KV cache is repeated n times, and a compact decode loop
samples all n continuations together, dropping rows as they hit EOS (ENVIRONMENT.md measured the
shared prefill at ~3x over generate(num_return_sequences=n)). Every problem draws from its own
torch.Generator seeded from (seed, problem_id), so its samples do not depend on which other
problems share a call, nor on where a killed run resumed.

vllm (GPU, optional): one request per problem with SamplingParams(n=...) and prefix caching.

Resume: finished problems go to ``<output>.partial/chunk-XXXXX.parquet`` (each written
atomically); a re-run with the same settings skips them; the final parquet appears atomically
once every problem is done, and the partial store is then removed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from nsr.io import InputError, write_json, write_parquet

SAMPLE_COLUMNS = ("problem_id", "sample_idx", "completion", "extracted", "answer", "reward", "correct")
BACKENDS = ("auto", "hf", "vllm")


@dataclass(frozen=True)
class SamplingSettings:
    num_samples: int = 256
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0

    def validate(self) -> None:
        if self.num_samples < 1:
            raise InputError(f"--num-samples must be >= 1, got {self.num_samples}")
        if self.temperature < 0:
            raise InputError(f"--temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InputError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise InputError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")


def problem_seed(seed: int, problem_id: str) -> int:
    """A stable per-problem seed (Python's hash() is salted per process, so not that)."""
    digest = hashlib.sha256(f"{seed}\x00{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _plain(value: Any) -> Any:
    """Parquet hands chat messages back as numpy arrays of dicts: turn them into lists."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def encode_prompt(tokenizer, prompt: Any) -> list[int]:
    """Prompt token ids exactly as TRL's GRPOTrainer builds them (plain text or chat messages)."""
    prompt = _plain(prompt)
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(ids["input_ids"])


# --------------------------------------------------------------------------- hf backend


def _eos_ids(model, tokenizer=None) -> list[int]:
    eos = model.generation_config.eos_token_id
    if eos is None and tokenizer is not None:
        eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("model has no eos_token_id in its generation_config or tokenizer")
    return [eos] if isinstance(eos, int) else list(eos)


def shared_prefix_sample(
    model,
    prompt_ids: Sequence[Sequence[int]],
    num_samples: int,
    *,
    max_new_tokens: int,
    eos_token_id: int | Sequence[int],
    pad_token_id: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seeds: Sequence[int] | None = None,
    extra_inputs: dict | None = None,
    return_logprobs: bool = False,
):
    """Sample ``num_samples`` continuations of each prompt; returns token ids [prompt][sample] (EOS cut).

    The prompts (left-padded) go through the model once; the cache is then repeated
    ``num_samples`` times per prompt. ``extra_inputs`` are passed to the prefill only (the place
    for a processor's pixel_values and friends). temperature 0 decodes greedily. ``seeds``: one
    per prompt. With ``return_logprobs`` also the model's (unwarped) log-probability of each kept
    token, same nesting.
    """
    import torch
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    device = model.device
    num_prompts = len(prompt_ids)
    if seeds is None:
        seeds = list(range(num_prompts))
    width = max(len(p) for p in prompt_ids)
    input_ids = torch.full((num_prompts, width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((num_prompts, width), dtype=torch.long)
    for i, ids in enumerate(prompt_ids):
        input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        mask[i, width - len(ids) :] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    # A plain forward numbers positions 0..width-1 regardless of padding; generate() derives
    # them from the mask, and so must we or left-padded prompts would shift.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)

    with torch.inference_mode():
        out = model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **(extra_inputs or {}),
        )
        cache = out.cache
        cache.batch_repeat_interleave(num_samples)
        logits = out.logits[:, -1].float().repeat_interleave(num_samples, dim=0)
        mask = mask.repeat_interleave(num_samples, dim=0)
        next_pos = positions[:, -1].repeat_interleave(num_samples) + 1
        rows = torch.arange(num_prompts * num_samples, device=device)  # global index of each live row
        owner = torch.arange(num_prompts, device=device).repeat_interleave(num_samples)  # its prompt

        tokens = torch.full((num_prompts * num_samples, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
        lengths = torch.zeros(num_prompts * num_samples, dtype=torch.long)
        logprobs = torch.zeros((num_prompts * num_samples, max_new_tokens), device=device) if return_logprobs else None
        eos = torch.tensor(list(eos_token_id) if not isinstance(eos_token_id, int) else [eos_token_id], device=device)
        greedy = temperature == 0
        warpers = LogitsProcessorList()
        if not greedy:
            if temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(temperature))
            if top_p < 1.0:
                warpers.append(TopPLogitsWarper(top_p))
        generators = []
        for s in seeds:
            g = torch.Generator(device=device)
            g.manual_seed(int(s))
            generators.append(g)

        for step in range(max_new_tokens):
            if greedy:
                chosen = logits.argmax(-1)
            else:
                probs = warpers(tokens[rows, :step], logits).softmax(-1)
                # Exponential race, argmax(p / E) with E ~ Exp(1), draws exactly from p (as vLLM samples);
                # each prompt's noise comes from its own generator and rows stay grouped by prompt, so
                # a prompt's draws do not depend on the other prompts in the call.
                prompt_idx, counts = torch.unique_consecutive(owner, return_counts=True)
                noise = torch.cat(
                    [
                        torch.empty(c, probs.shape[1], device=device).exponential_(generator=generators[p])
                        for p, c in zip(prompt_idx.tolist(), counts.tolist())
                    ]
                )
                # A zero draw would make 0/0 = nan for a zero-mass token; the smallest float keeps it a win only where p > 0.
                chosen = (probs / noise.clamp_(min=torch.finfo(noise.dtype).tiny)).argmax(-1)
            tokens[rows, step] = chosen
            if return_logprobs:
                logprobs[rows, step] = logits.log_softmax(-1).gather(1, chosen[:, None]).squeeze(1)
            done = torch.isin(chosen, eos)
            lengths[rows[~done].cpu()] += 1
            if done.all() or step == max_new_tokens - 1:
                break
            if done.any():  # drop finished rows so later steps only compute live ones
                keep = (~done).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                rows, owner, chosen, mask, next_pos = rows[keep], owner[keep], chosen[keep], mask[keep], next_pos[keep]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            out = model(
                input_ids=chosen[:, None],
                attention_mask=mask,
                position_ids=next_pos[:, None],
                cache=cache,
                use_cache=True,
            )
            cache = out.cache
            logits = out.logits[:, -1].float()
            next_pos = next_pos + 1

    def nest(values):
        values = values.cpu()
        flat = [values[i, : lengths[i]].tolist() for i in range(num_prompts * num_samples)]
        return [flat[p * num_samples : (p + 1) * num_samples] for p in range(num_prompts)]

    return (nest(tokens), nest(logprobs)) if return_logprobs else nest(tokens)


class HFSampler:
    """Text causal LMs via transformers (CPU or GPU) with the shared prefilled cache."""

    name = "hf"

    def __init__(self, model_dir: str | Path, num_threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if num_threads:
            torch.set_num_threads(num_threads)
        cuda = torch.cuda.is_available()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16 if cuda else torch.float32)
        self.model.to("cuda" if cuda else "cpu").eval()
        self.eos = _eos_ids(self.model, self.tokenizer)
        pad = self.model.generation_config.pad_token_id
        self.pad = pad if pad is not None else (self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos[0])

    def sample(self, prompts: Sequence[Any], seeds: Sequence[int], settings: SamplingSettings) -> list[list[str]]:
        ids = shared_prefix_sample(
            self.model,
            [encode_prompt(self.tokenizer, p) for p in prompts],
            settings.num_samples,
            max_new_tokens=settings.max_new_tokens,
            eos_token_id=self.eos,
            pad_token_id=self.pad,
            temperature=settings.temperature,
            top_p=settings.top_p,
            seeds=seeds,
        )
        return [self.tokenizer.batch_decode(per_prompt, skip_special_tokens=True) for per_prompt in ids]


# --------------------------------------------------------------------------- vllm backend


class VLLMSampler:
    """GPU sampling with vLLM: one request per problem with n samples; prefix caching on."""

    name = "vllm"

    def __init__(self, model_dir: str | Path, seed: int = 0):
        from vllm import LLM  # lazy: optional GPU extra

        self.llm = LLM(model=str(model_dir), seed=seed, enable_prefix_caching=True)
        self.tokenizer = self.llm.get_tokenizer()

    def sample(self, prompts: Sequence[Any], seeds: Sequence[int], settings: SamplingSettings) -> list[list[str]]:
        from vllm import SamplingParams

        params = [
            SamplingParams(
                n=settings.num_samples,
                temperature=settings.temperature,
                top_p=settings.top_p,
                max_tokens=settings.max_new_tokens,
                seed=int(s) % (2**31),
            )
            for s in seeds
        ]
        # Token ids, not text, so both backends see exactly the same prompt tokens.
        requests = [{"prompt_token_ids": encode_prompt(self.tokenizer, p)} for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [[c.text for c in sorted(o.outputs, key=lambda c: c.index)] for o in outputs]


def _vllm_importable() -> bool:
    return importlib.util.find_spec("vllm") is not None


def resolve_backend(backend: str) -> str:
    """auto -> vllm when it imports and a GPU is present, else hf. Fails early with a clear message."""
    if backend not in BACKENDS:
        raise InputError(f"--backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        import torch

        return "vllm" if _vllm_importable() and torch.cuda.is_available() else "hf"
    if backend == "vllm" and not _vllm_importable():
        raise InputError("--backend vllm: the vllm package is not installed (pip install 'nsr[gpu]' on a GPU machine), or use --backend hf")
    return backend


def make_sampler(backend: str, model_dir: str | Path, seed: int, num_threads: int | None = None):
    if backend == "vllm":
        return VLLMSampler(model_dir, seed=seed)
    return HFSampler(model_dir, num_threads=num_threads)


# --------------------------------------------------------------------------- scoring + resumable driver


def score_rows(problems: pd.DataFrame, completions: Sequence[Sequence[str]], reward_threshold: float) -> pd.DataFrame:
    from nsr.rewards import extract_answer, score

    records = []
    for (_, row), samples in zip(problems.iterrows(), completions):
        for idx, text in enumerate(samples):
            reward = float(score(text, row["answer"]))
            records.append((row["problem_id"], idx, text, extract_answer(text), row["answer"], reward, reward >= reward_threshold))
    frame = pd.DataFrame.from_records(records, columns=list(SAMPLE_COLUMNS))
    return frame.astype({"problem_id": str, "sample_idx": "int64", "reward": "float64", "correct": bool})


def _model_fingerprint(model_dir: str | Path) -> str:
    """Changes when the model folder's files change, so a retrained model never reuses old partials."""
    path = Path(model_dir)
    if not path.is_dir():
        return str(model_dir)  # a hub id: its name is all we have
    stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file())
    return hashlib.sha256(repr(stats).encode()).hexdigest()[:16]


def _problem_fingerprint(problems: pd.DataFrame) -> str:
    text = json.dumps([[str(r.problem_id), str(r.answer), repr(_plain(r.prompt))] for r in problems.itertuples()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _validate_problems(problems: pd.DataFrame) -> pd.DataFrame:
    from nsr.data import validate_rows

    problems = validate_rows(problems.reset_index(drop=True), "problem set").copy()
    problems["problem_id"] = problems["problem_id"].astype(str)
    problems["answer"] = problems["answer"].astype(str)
    if "image" in problems.columns and problems["image"].notna().any():
        raise InputError("problems with images need a vision-language sampler, not supported yet (render the task as text)")
    return problems


def sample_to_file(
    model_dir: str | Path,
    problems: pd.DataFrame,
    output: str | Path,
    settings: SamplingSettings = SamplingSettings(),
    *,
    backend: str = "auto",
    problems_per_call: int | None = None,
    reward_threshold: float = 0.5,
    num_threads: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Sample, score and write the samples parquet; resumes from ``<output>.partial``. Returns the frame."""
    from tqdm.auto import tqdm

    settings.validate()
    problems = _validate_problems(problems)
    backend = resolve_backend(backend)
    if problems_per_call is None:
        problems_per_call = 32 if backend == "vllm" else 1
    if problems_per_call < 1:
        raise InputError(f"--problems-per-call must be >= 1, got {problems_per_call}")
    output = Path(output)
    partial = output.with_name(output.name + ".partial")
    meta = {
        **asdict(settings),
        "backend": backend,
        "reward_threshold": reward_threshold,
        "model": str(model_dir),
        "model_fingerprint": _model_fingerprint(model_dir),
        "problems_fingerprint": _problem_fingerprint(problems),
    }
    if partial.exists() and _read_meta(partial) != meta:
        print(f"nsr sample: settings changed since {partial} was written; starting over", file=sys.stderr)
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    write_json(partial / "meta.json", meta)

    chunks = sorted(partial.glob("chunk-*.parquet"))
    done = {pid for chunk in chunks for pid in pd.read_parquet(chunk, columns=["problem_id"])["problem_id"]}
    todo = problems[~problems["problem_id"].isin(done)]
    next_chunk = len(chunks) and int(chunks[-1].stem.split("-")[1]) + 1
    if len(todo):
        sampler = make_sampler(backend, model_dir, settings.seed, num_threads)
        bar = tqdm(total=len(problems), initial=len(problems) - len(todo), unit="problem", file=sys.stderr, disable=not progress)
        start, drawn = time.perf_counter(), 0
        for begin in range(0, len(todo), problems_per_call):
            batch = todo.iloc[begin : begin + problems_per_call]
            seeds = [problem_seed(settings.seed, pid) for pid in batch["problem_id"]]
            completions = sampler.sample(list(batch["prompt"]), seeds, settings)
            write_parquet(partial / f"chunk-{next_chunk:05d}.parquet", score_rows(batch, completions, reward_threshold))
            next_chunk += 1
            drawn += len(batch) * settings.num_samples
            bar.set_postfix(samples_per_s=f"{drawn / (time.perf_counter() - start):.0f}", refresh=False)
            bar.update(len(batch))
        bar.close()

    frame = pd.concat([pd.read_parquet(c) for c in sorted(partial.glob("chunk-*.parquet"))], ignore_index=True)
    order = {pid: i for i, pid in enumerate(problems["problem_id"])}
    frame = frame[frame["problem_id"].isin(order)]
    frame = frame.sort_values(["problem_id", "sample_idx"], key=lambda col: col.map(order) if col.name == "problem_id" else col)
    frame = frame.reset_index(drop=True)
    if frame["problem_id"].nunique() != len(problems) or len(frame) != len(problems) * settings.num_samples:
        raise RuntimeError(f"{partial}: partial store is inconsistent ({len(frame)} rows); delete it and re-run")
    frame.attrs = {"nsr_sampling": meta}  # pandas keeps attrs in the parquet metadata
    write_parquet(output, frame)
    shutil.rmtree(partial)
    return frame


def _read_meta(partial: Path) -> dict | None:
    try:
        return json.loads((partial / "meta.json").read_text())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "--checkpoint-path", dest="model", required=True, help="model folder (or hub id)")
    parser.add_argument("--dataset-name", default="synthchart", help="task name or .parquet problem file")
    parser.add_argument("--split", default="test", help="split when --dataset-name is a task (default: test)")
    parser.add_argument("--subset-size", type=int, default=None, help="number of problems (default: all)")
    parser.add_argument("--data-seed", type=int, default=2025, help="seed of the problem subset (as `nsr subset`)")
    parser.add_argument("--output", "--output-path", dest="output", required=True, help="samples .parquet")
    parser.add_argument("--num-samples", type=int, default=256, help="samples per problem")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="auto: vllm if installed and a GPU is present, else hf")
    parser.add_argument(
        "--problems-per-call", "--batch-size", dest="problems_per_call", type=int, default=None,
        help="problems per generation call and per resume chunk (default: 1 for hf, 32 for vllm)",
    )
    parser.add_argument("--num-threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--reward-threshold", type=float, default=0.5, help="correct = reward >= threshold")


def run(args: argparse.Namespace) -> None:
    from nsr.data import load_problems

    settings = SamplingSettings(args.num_samples, args.temperature, args.top_p, args.max_new_tokens, args.seed)
    settings.validate()
    resolve_backend(args.backend)  # fail on a missing vllm before loading anything
    problems = load_problems(args.dataset_name, split=args.split, num=args.subset_size, seed=args.data_seed)
    frame = sample_to_file(
        args.model,
        problems,
        args.output,
        settings,
        backend=args.backend,
        problems_per_call=args.problems_per_call,
        reward_threshold=args.reward_threshold,
        num_threads=args.num_threads,
    )
    per_problem = frame.groupby("problem_id")["correct"].mean()
    print(
        f"wrote {len(frame)} samples ({len(per_problem)} problems x {settings.num_samples}) to {args.output}; "
        f"mean correct {frame['correct'].mean():.4f}, problems solved at least once {(per_problem > 0).mean():.4f}"
    )
