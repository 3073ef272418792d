"""Vision-language policies: a tiny Qwen2.5-VL built locally, a torchvision-free processor, and
loaders that pick the right Auto classes for any policy folder (text LM or VLM).

The stock Qwen2_5_VLProcessor also builds a video processor, which needs torchvision (broken on
CPU here). ``ImageOnlyQwenVLProcessor`` is the same processor without the video part: it reuses
Qwen2_5_VLProcessor's text/image logic (image-token expansion, mm_token_type_ids) and pairs the
PIL-backed Qwen2VLImageProcessorPil with any tokenizer. It is registered with AutoProcessor on
import, so ``AutoProcessor.from_pretrained`` loads a folder saved with it once nsr.vlm is imported
(``load_processing`` does that).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoProcessor, ProcessorMixin, Qwen2_5_VLProcessor

from nsr.io import InputError, atomic_path

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
# Plain-text chat template (as nsr.tiny's) that also renders image parts as Qwen's placeholder,
# which the processor then expands to one <|image_pad|> per merged image patch.
VL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}" + IMAGE_PLACEHOLDER + "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if not loop.last %}\n{% endif %}"
    "{% endfor %}"
)


class ImageOnlyQwenVLProcessor(Qwen2_5_VLProcessor):
    """Qwen2_5_VLProcessor with image_processor + tokenizer only (no torchvision video processor)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        # Skip Qwen2_5_VLProcessor.__init__: it would require a video_processor.
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    @property
    def model_input_names(self):
        return list(dict.fromkeys(self.tokenizer.model_input_names + self.image_processor.model_input_names + ["mm_token_type_ids"]))


# A string key is allowed by the mapping; it only lets AutoProcessor resolve the saved
# processor_class name without hijacking the stock processor of real Qwen2.5-VL folders.
AutoProcessor.register("nsr_image_only_qwen_vl", ImageOnlyQwenVLProcessor, exist_ok=True)


@dataclass
class TinyVLMConfig:
    """Shape of a tiny Qwen2.5-VL: 2-layer text model, 2-block vision tower, small images."""

    num_hidden_layers: int = 2
    hidden_size: int = 64
    intermediate_size: int = 128
    num_attention_heads: int = 2
    num_key_value_heads: int = 1
    vision_depth: int = 2
    vision_hidden_size: int = 32
    vision_heads: int = 2
    vision_intermediate_size: int = 64
    # The image processor resizes every image to at most max_pixels (multiples of 28 x 28):
    # 28*28*16 -> at most 64 patches, 16 image tokens after the 2x2 merge.
    min_pixels: int = 28 * 28 * 4
    max_pixels: int = 28 * 28 * 16
    max_position_embeddings: int = 512


def build_tiny_vlm(shape: TinyVLMConfig | None = None, seed: int = 0):
    """(model, processor): a randomly initialised Qwen2_5_VLForConditionalGeneration and its processor."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from nsr.tiny import build_tokenizer, text_config_kwargs

    shape = shape or TinyVLMConfig()
    tokenizer = build_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": list(VISION_TOKENS)})
    tokenizer.chat_template = VL_CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS}
    head_dim = shape.hidden_size // shape.num_attention_heads
    # mrope splits each head's rotary half-dims over (time, height, width), as Qwen's [16, 24, 24] of 64.
    t_sec = head_dim // 8
    mrope = [t_sec, (head_dim // 2 - t_sec) // 2, head_dim // 2 - t_sec - (head_dim // 2 - t_sec) // 2]
    config = Qwen2_5_VLConfig(
        text_config=dict(
            **text_config_kwargs(tokenizer, shape),
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
        ),
        vision_config=dict(
            depth=shape.vision_depth,
            hidden_size=shape.vision_hidden_size,
            intermediate_size=shape.vision_intermediate_size,
            num_heads=shape.vision_heads,
            out_hidden_size=shape.hidden_size,
            fullatt_block_indexes=[shape.vision_depth - 1],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
    )
    image_processor = Qwen2VLImageProcessorPil(min_pixels=shape.min_pixels, max_pixels=shape.max_pixels)
    processor = ImageOnlyQwenVLProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=VL_CHAT_TEMPLATE)
    return model, processor


def save_tiny_vlm(output_dir: str | Path, shape: TinyVLMConfig | None = None, seed: int = 0) -> Path:
    """Build a tiny VLM and write it (model + processor) atomically as one HF folder."""
    model, processor = build_tiny_vlm(shape, seed)
    with atomic_path(output_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    return Path(output_dir)


# --------------------------------------------------------------------------- loading any policy folder

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def is_vlm_folder(path: str | Path) -> bool:
    """True when the policy's config is a vision-language one (it has a vision tower config).
    A local folder's config.json is read directly; a hub id goes through AutoConfig."""
    config = Path(path) / "config.json"
    if config.exists():
        try:
            return "vision_config" in json.loads(config.read_text())
        except ValueError as exc:
            raise InputError(f"{config}: not valid JSON ({exc})") from exc
    if Path(path).exists():
        return False
    from transformers import AutoConfig

    return hasattr(AutoConfig.from_pretrained(str(path)), "vision_config")


def load_processing(path: str | Path):
    """AutoProcessor when the folder has a processor config (VLMs), else AutoTokenizer.
    A hub id goes to AutoProcessor, which itself falls back to the tokenizer for text models."""
    from transformers import AutoTokenizer

    local = Path(path)
    if not local.is_dir() or any((local / name).exists() for name in PROCESSOR_FILES):
        return AutoProcessor.from_pretrained(str(path))
    return AutoTokenizer.from_pretrained(local)


def load_policy(path: str | Path, **kwargs):
    """AutoModelForCausalLM for text models; AutoModelForImageTextToText for VLMs (Qwen2.5-VL is only mapped there)."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    cls = AutoModelForImageTextToText if is_vlm_folder(path) else AutoModelForCausalLM
    return cls.from_pretrained(str(path), **kwargs)


def tokenizer_of(processing) -> Any:
    """The tokenizer inside a processor, or the tokenizer itself."""
    return getattr(processing, "tokenizer", processing)


def chat_with_image(prompt: Any) -> list[dict]:
    """A problem prompt as chat messages whose user turn holds one image placeholder (then the text).

    The one place where image problems get their conversational form: a plain string becomes
    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": ...}]}]; chat
    messages without an image part get one in front of the first user turn's content.
    """
    if isinstance(prompt, str):
        return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    messages = [dict(m) for m in prompt]
    parts = lambda m: m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]  # noqa: E731
    if any(p.get("type") == "image" for m in messages for p in parts(m)):
        return messages
    for m in messages:
        if m.get("role") == "user":
            m["content"] = [{"type": "image"}, *parts(m)]
            return messages
    raise InputError(f"prompt has no user message to attach the image to: {prompt!r}")


def to_pil(image: Any):
    """PNG/JPEG bytes, {"bytes": ...} (datasets/parquet form) or a PIL image -> RGB PIL image."""
    import io

    from PIL import Image

    if isinstance(image, dict):
        image = image.get("bytes")
    if isinstance(image, (bytes, bytearray)):
        image = Image.open(io.BytesIO(image))
    if not isinstance(image, Image.Image):
        raise InputError(f"image must be PNG/JPEG bytes or a PIL image, got {type(image).__name__}")
    return image.convert("RGB")
