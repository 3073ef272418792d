"""Tiny models built locally (no hub): a byte-level tokenizer and a small Qwen2 causal LM.

The tokenizer is a byte-level BPE with no merges: every byte is one token, so any text
round-trips, and the folder survives ``AutoTokenizer.from_pretrained`` (a WordLevel char
tokenizer does not: for a qwen2 folder AutoTokenizer swaps in Qwen's pre-tokenizer).
"""

from __future__ import annotations

from dataclasses import dataclass

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
# Plain-text chat template so conversational prompts also work with the tiny model.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% endif %}"
    "{% if not loop.last %}\n{% endif %}"
    "{% endfor %}"
)


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


@dataclass
class TinyModelConfig:
    """Shape of the embedded tiny Qwen2 policy."""

    num_hidden_layers: int = 2  # 2 x 128 (0.5M params) learns the synthchart ranking fastest per CPU second
    hidden_size: int = 128
    intermediate_size: int = 512
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 256


def text_config_kwargs(tokenizer, shape) -> dict:
    """Decoder sizes and special-token ids shared by the tiny text model and the tiny VLM's text part."""
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=shape.max_position_embeddings,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )


def build_tiny_model(tokenizer, shape: TinyModelConfig | None = None, seed: int = 0):
    """A randomly initialised Qwen2ForCausalLM sized for CPU; generation config set from tokenizer."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    shape = shape or TinyModelConfig()
    config = Qwen2Config(**text_config_kwargs(tokenizer, shape), tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
    )
    return model
