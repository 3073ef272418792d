"""`nsr sample`: n samples per test problem, scored; resumable; backends hf and vllm.

hf: each prompt is prefilled ONCE, its KV cache is repeated n times, and a compact decode loop
samples all n continuations together, dropping rows as they hit EOS (ENVIRONMENT.md measured the
shared prefill at ~3x over generate(num_return_sequences=n)). Every problem draws from its own
torch.Generator seeded from (seed, problem_id), so its samples do not depend on which other
problems share a call, nor on where a killed run resumed.

Problems with an ``image`` column (PNG bytes) need a vision-language model folder (one with a
processor config, e.g. Qwen2.5-VL): hf prefills prompt + image once (pixel_values,
image_grid_thw, multimodal rope positions) and shares that cache over the n samples.

vllm (GPU, optional): one request per problem with SamplingParams(n=...) and prefix caching;
images go in as {"prompt": text, "multi_modal_data": {"image": PIL image}}.

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
    return_entropies: bool = False,
):
    """Sample ``num_samples`` continuations of each prompt; returns token ids [prompt][sample] (EOS cut).

    The prompts (left-padded) go through the model once; the cache is then repeated
    ``num_samples`` times per prompt. ``extra_inputs`` are passed to the prefill only (the place
    for a processor's pixel_values and image_grid_thw, images in prompt order). Models with
    multimodal rope (Qwen2-VL family) get their 3D positions from the model's get_rope_index at
    prefill and text positions shifted by the per-prompt rope delta while decoding, as
    generate() does. temperature 0 decodes greedily. ``seeds``: one
    per prompt. With ``return_logprobs`` also the model's (unwarped) log-probability of each kept
    token, same nesting. With ``return_entropies`` also the entropy of the sampling distribution
    (logits / temperature, before top-p; the raw logits when greedy) at every generated position,
    the EOS position included (as TRL's training entropy), same nesting; both extras come after
    the tokens in that order.
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
    extra_inputs = dict(extra_inputs or {})
    mrope = _mrope_prefill(model, input_ids, mask, positions, extra_inputs)
    prefill_positions, rope_deltas = mrope if mrope is not None else (positions, None)

    with torch.inference_mode():
        out = model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=prefill_positions,
            use_cache=True,
            logits_to_keep=1,
            **extra_inputs,
        )
        cache = out.cache
        cache.batch_repeat_interleave(num_samples)
        logits = out.logits[:, -1].float().repeat_interleave(num_samples, dim=0)
        mask = mask.repeat_interleave(num_samples, dim=0)
        next_pos = positions[:, -1].repeat_interleave(num_samples) + 1
        if rope_deltas is not None:  # one delta per prompt: repeat it for the prompt's n rows
            rope_deltas = rope_deltas.reshape(-1).repeat_interleave(num_samples)
        rows = torch.arange(num_prompts * num_samples, device=device)  # global index of each live row
        owner = torch.arange(num_prompts, device=device).repeat_interleave(num_samples)  # its prompt

        tokens = torch.full((num_prompts * num_samples, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
        lengths = torch.zeros(num_prompts * num_samples, dtype=torch.long)
        logprobs = torch.zeros((num_prompts * num_samples, max_new_tokens), device=device) if return_logprobs else None
        entropies = torch.zeros((num_prompts * num_samples, max_new_tokens), device=device) if return_entropies else None
        positions_seen = torch.zeros(num_prompts * num_samples, dtype=torch.long)  # generated positions incl. EOS
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
            if return_entropies:
                scaled = (logits if greedy else logits / temperature).log_softmax(-1)
                entropies[rows, step] = -(scaled.exp() * scaled).sum(-1)
            positions_seen[rows.cpu()] += 1
            done = torch.isin(chosen, eos)
            lengths[rows[~done].cpu()] += 1
            if done.all() or step == max_new_tokens - 1:
                break
            if done.any():  # drop finished rows so later steps only compute live ones
                keep = (~done).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                rows, owner, chosen, mask, next_pos = rows[keep], owner[keep], chosen[keep], mask[keep], next_pos[keep]
                if rope_deltas is not None:
                    rope_deltas = rope_deltas[keep]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            out = model(
                input_ids=chosen[:, None],
                attention_mask=mask,
                position_ids=_decode_positions(next_pos, rope_deltas),
                cache=cache,
                use_cache=True,
            )
            cache = out.cache
            logits = out.logits[:, -1].float()
            next_pos = next_pos + 1

    def nest(values, counts=lengths):
        values = values.cpu()
        flat = [values[i, : counts[i]].tolist() for i in range(num_prompts * num_samples)]
        return [flat[p * num_samples : (p + 1) * num_samples] for p in range(num_prompts)]

    extras = ([nest(logprobs)] if return_logprobs else []) + ([nest(entropies, positions_seen)] if return_entropies else [])
    return (nest(tokens), *extras) if extras else nest(tokens)


def _mrope_prefill(model, input_ids, mask, positions, extra_inputs):
    """For multimodal-rope models: ([text; t; h; w] prefill positions, rope delta per prompt), else None.

    Vision tokens share positions (3D grid), so after an image the text positions run behind the
    token count; the delta (max position + 1 - length) shifts every decoded token accordingly.
    """
    import torch

    inner = getattr(model, "model", None)
    if not hasattr(inner, "get_rope_index"):
        return None
    config = model.config
    mm_types = torch.zeros_like(input_ids, dtype=torch.int)
    mm_types[input_ids == config.image_token_id] = 1
    if getattr(config, "video_token_id", None) is not None:
        mm_types[input_ids == config.video_token_id] = 2
    extra_inputs["mm_token_type_ids"] = mm_types
    with torch.inference_mode():
        rope, deltas = inner.get_rope_index(
            input_ids, mm_token_type_ids=mm_types, attention_mask=mask,
            image_grid_thw=extra_inputs.get("image_grid_thw"), video_grid_thw=extra_inputs.get("video_grid_thw"),
        )
    # Row 0 holds the plain text positions (the model builds its attention mask from them), as generate() passes.
    return torch.cat([positions[None], rope.to(positions)], dim=0), deltas.to(positions.device)


def _decode_positions(next_pos, rope_deltas):
    import torch

    if rope_deltas is None:
        return next_pos[:, None]
    text = next_pos[None, :, None]
    return torch.cat([text, (text + rope_deltas[None, :, None]).expand(3, -1, -1)], dim=0)


def encode_problems(processing, model, prompts: Sequence[Any], images: Sequence[Any] | None = None) -> tuple[list[list[int]], dict]:
    """Prompt token ids (image tokens expanded) and the prefill's pixel inputs (images in prompt order),
    for shared_prefix_sample. ``processing``: a tokenizer, or a processor for image problems."""
    import torch

    from nsr.vlm import chat_with_image, to_pil, tokenizer_of

    if images is None:
        return [encode_prompt(tokenizer_of(processing), p) for p in prompts], {}
    if not hasattr(processing, "image_processor"):
        raise InputError("problems with images need a vision-language model folder (one with a processor config)")
    ids, pixels, grids = [], [], []
    for prompt, image in zip(prompts, images):
        text = processing.apply_chat_template(chat_with_image(_plain(prompt)), add_generation_prompt=True, tokenize=False)
        enc = processing(text=[text], images=[to_pil(image)], return_tensors="pt")
        ids.append(enc["input_ids"][0].tolist())
        pixels.append(enc["pixel_values"])
        grids.append(enc["image_grid_thw"])
    return ids, {"pixel_values": torch.cat(pixels).to(model.device, model.dtype), "image_grid_thw": torch.cat(grids).to(model.device)}


class HFSampler:
    """Text LMs and VLMs via transformers (CPU or GPU) with the shared prefilled cache."""

    name = "hf"

    def __init__(self, model_dir: str | Path, num_threads: int | None = None):
        import torch

        from nsr.vlm import load_policy, load_processing, tokenizer_of

        if num_threads:
            torch.set_num_threads(num_threads)
        cuda = torch.cuda.is_available()
        self.processing = load_processing(model_dir)
        self.tokenizer = tokenizer_of(self.processing)
        self.model = load_policy(model_dir, dtype=torch.bfloat16 if cuda else torch.float32)
        self.model.to("cuda" if cuda else "cpu").eval()
        self.eos = _eos_ids(self.model, self.tokenizer)
        pad = self.model.generation_config.pad_token_id
        self.pad = pad if pad is not None else (self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos[0])

    def encode(self, prompts: Sequence[Any], images: Sequence[Any] | None = None) -> tuple[list[list[int]], dict]:
        return encode_problems(self.processing, self.model, prompts, images)

    def sample(self, prompts: Sequence[Any], seeds: Sequence[int], settings: SamplingSettings,
               images: Sequence[Any] | None = None) -> list[list[str]]:
        ids, extra = self.encode(prompts, images)
        out = shared_prefix_sample(
            self.model,
            ids,
            settings.num_samples,
            max_new_tokens=settings.max_new_tokens,
            eos_token_id=self.eos,
            pad_token_id=self.pad,
            temperature=settings.temperature,
            top_p=settings.top_p,
            seeds=seeds,
            extra_inputs=extra,
        )
        return [self.tokenizer.batch_decode(per_prompt, skip_special_tokens=True) for per_prompt in out]


# --------------------------------------------------------------------------- vllm backend


class VLLMSampler:
    """GPU sampling with vLLM: one request per problem with n samples; prefix caching on."""

    name = "vllm"

    def __init__(self, model_dir: str | Path, seed: int = 0):
        from vllm import LLM  # lazy: optional GPU extra

        self.model_dir = model_dir
        self.llm = LLM(model=str(model_dir), seed=seed, enable_prefix_caching=True)
        self.tokenizer = self.llm.get_tokenizer()
        self._processor = None

    def _request(self, prompt: Any, image: Any = None) -> dict:
        if image is None:
            # Token ids, not text, so both backends see exactly the same prompt tokens.
            return {"prompt_token_ids": encode_prompt(self.tokenizer, prompt)}
        from nsr.vlm import chat_with_image, load_processing, to_pil

        if self._processor is None:
            self._processor = load_processing(self.model_dir)
        # vLLM's multi-modal input: the prompt text with one unexpanded image placeholder + the image.
        text = self._processor.apply_chat_template(chat_with_image(_plain(prompt)), add_generation_prompt=True, tokenize=False)
        return {"prompt": text, "multi_modal_data": {"image": to_pil(image)}}

    def sample(self, prompts: Sequence[Any], seeds: Sequence[int], settings: SamplingSettings,
               images: Sequence[Any] | None = None) -> list[list[str]]:
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
        requests = [self._request(p, None if images is None else images[i]) for i, p in enumerate(prompts)]
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
    digest = hashlib.sha256(text.encode())
    for image in problems["image"] if "image" in problems.columns else ():
        digest.update(_image_bytes(image))
    return digest.hexdigest()[:16]


def _image_bytes(image: Any) -> bytes:
    if isinstance(image, dict):
        image = image.get("bytes")
    return bytes(image) if isinstance(image, (bytes, bytearray)) else repr(image).encode()


def _validate_problems(problems: pd.DataFrame) -> pd.DataFrame:
    from nsr.data import validate_rows

    problems = validate_rows(problems.reset_index(drop=True), "problem set").copy()
    problems["problem_id"] = problems["problem_id"].astype(str)
    problems["answer"] = problems["answer"].astype(str)
    if "image" in problems.columns:
        if problems["image"].notna().any() and problems["image"].isna().any():
            missing = problems.loc[problems["image"].isna(), "problem_id"].iloc[0]
            raise InputError(f"problem set: column 'image' is missing for problem {missing!r} (all or none need one)")
        if problems["image"].isna().all():
            problems = problems.drop(columns="image")
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
    if "image" in problems.columns and Path(model_dir).is_dir():
        from nsr.vlm import PROCESSOR_FILES

        if not any((Path(model_dir) / name).exists() for name in PROCESSOR_FILES):
            raise InputError(f"--model {model_dir}: the problems have images but the folder has no processor config "
                             f"({' / '.join(PROCESSOR_FILES)}); use a vision-language model or render the task as text")
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
            images = {"images": list(batch["image"])} if "image" in batch.columns else {}
            completions = sampler.sample(list(batch["prompt"]), seeds, settings, **images)
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
