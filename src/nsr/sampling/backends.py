"""Sampling backends: hf (transformers + shared_prefix_sample, CPU or GPU) and vllm (GPU, optional).

Both take the same SamplingSettings and return n completion texts per prompt.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from nsr.io import InputError
from nsr.sampling.decoding import encode_problems, encode_prompt, eos_ids, plain_prompt, shared_prefix_sample

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
        self.eos = eos_ids(self.model, self.tokenizer)
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
        text = self._processor.apply_chat_template(chat_with_image(plain_prompt(prompt)), add_generation_prompt=True, tokenize=False)
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
