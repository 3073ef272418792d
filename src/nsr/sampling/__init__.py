"""n samples per problem, scored; resumable; backends hf and vllm.

    decoding.py  shared-prefix decoding (shared_prefix_sample) and prompt encoding
    backends.py  SamplingSettings; HFSampler, VLLMSampler; resolve_backend, make_sampler
    store.py     scoring and the resumable chunk store (sample_to_file; resume rules there)
    formats.py   samples files: .json (the seed guide's records) / .jsonl / .parquet by name, read by content
    cli.py       `nsr sample`

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
"""

from nsr.sampling.backends import BACKENDS, SamplingSettings
from nsr.sampling.decoding import encode_problems, encode_prompt, eos_ids, problem_seed, shared_prefix_sample
from nsr.sampling.store import SAMPLE_COLUMNS, sample_to_file

__all__ = [
    "BACKENDS",
    "SAMPLE_COLUMNS",
    "SamplingSettings",
    "encode_problems",
    "encode_prompt",
    "eos_ids",
    "problem_seed",
    "sample_to_file",
    "shared_prefix_sample",
]
