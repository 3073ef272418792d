"""NSRConfig: TRL's GRPOConfig plus the decomposed-RLVR objective and the trainer's fast paths."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from trl import GRPOConfig

from nsr.objectives import keeps_every_sample, methods
from nsr.trainer.batch_filter import BATCH_FILTERS
from nsr.trainer.group_filter import GROUP_FILTERS, refusal

# Loss types whose normaliser is a token count over the (masked) batch, so excluded rows drop out of it.
# "grpo"/"sapo"/"luspo" average over rows and "dr_grpo" over a fixed length: excluded rows would still dilute.
_TOKEN_MEAN_LOSSES = ("dapo", "bnpo", "cispo")
ROLLOUT_SAMPLERS = ("shared_prefix", "trl")
_SUBSET_LOSSES = ("dapo", "cispo")  # normalised by num_items_in_batch, which batch_filter subset sets per micro-batch


@dataclass
class NSRConfig(GRPOConfig):
    """GRPOConfig plus the decomposed-RLVR objective.

    bf16 and activation (gradient) checkpointing default to on only when CUDA is available:
    on CPU TRL's bf16 default fails and checkpointing only costs time.
    """

    objective: str = field(
        default="grpo",
        metadata={"help": "grpo (stock TRL GRPO), psr (+1 on correct only), nsr (-1 on incorrect only), "
                  "w-reinforce (+lambda_psr on correct, -1 on incorrect)."},
    )
    lambda_psr: float = field(default=0.1, metadata={"help": "Weight of correct samples in w-reinforce."})
    batch_filter: str = field(
        default="mask",
        metadata={"help": "How psr / nsr leave out excluded samples: mask (zero loss mask inside the optimizer steps "
                  "every objective takes) or subset (the official code: removed from the generation batch, the rest "
                  "cut into mini-batches of per_device_train_batch_size x gradient_accumulation_steps, one optimizer "
                  "step each, the last one weighted by its share of a mini-batch; nsr.trainer.batch_filter)."},
    )
    reward_threshold: float = field(
        default=0.5, metadata={"help": "A sample is positive iff its reward >= this (1.0: fully correct only)."})
    group_filter: str = field(
        default="all",
        metadata={"help": "Which groups of num_generations rollouts train (nsr.trainer.group_filter): all, mixed "
                  "(0 < positives < num_generations: DAPO's dynamic sampling), unsolved (no positive sample: the "
                  "zero-success restriction), solved (at least one positive sample). Filtered groups leave the batch "
                  "before batch_filter acts on samples."},
    )
    group_filter_max_batches: int = field(
        default=0,
        metadata={"help": "Generation batches a step may use in all when group_filter drops groups: while fewer groups "
                  "than one generation batch holds survived, another batch is generated (its prompts drawn from the "
                  "train dataset by seed and step), up to this many; then the step trains on what survived. 0 or 1: "
                  "no refill. (verl's max_num_gen_batches counts alike, but there 0 means no limit.)"},
    )
    bf16: bool | None = field(default=None, metadata={"help": "bf16 mixed precision; None: on with CUDA."})
    # transformers 5 renamed gradient_checkpointing to activation_checkpointing; TRL defaults the old name to True.
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "Deprecated alias of activation_checkpointing."}
    )
    shared_prefix_forward: bool = field(
        default=True,
        metadata={"help": "Loss forward: each group's prompt runs once and its KV cache is shared by the group's "
                  "completions (text models, one process, no DeepSpeed/FSDP); False: TRL's forward of every row."},
    )
    rollout_sampler: str = field(
        default="shared_prefix",
        metadata={"help": "Who samples the rollouts of text models: shared_prefix (nsr.sampling's decoder, the one "
                  "evaluation uses: each prompt prefilled once, its cache shared by its num_generations rows) or "
                  "trl (TRL's generate / paged generation). use_vllm and image prompts always take TRL's path."},
    )

    def __post_init__(self):
        if self.objective not in methods():
            raise ValueError(f"objective must be one of {methods()}, got {self.objective!r}")
        if self.rollout_sampler not in ROLLOUT_SAMPLERS:
            raise ValueError(f"rollout_sampler must be one of {ROLLOUT_SAMPLERS}, got {self.rollout_sampler!r}")
        if self.rollout_sampler == "shared_prefix":
            unsupported = {name: value for name, value in (
                ("top_k", self.top_k or 0), ("min_p", self.min_p), ("repetition_penalty", self.repetition_penalty),
                ("generation_kwargs", self.generation_kwargs)) if value not in (0, None, 1.0)}
            if unsupported:
                name = next(iter(unsupported))
                raise ValueError(f"{name}={unsupported[name]!r}: rollout_sampler 'shared_prefix' samples with "
                                 "temperature and top_p only; set rollout_sampler='trl' for TRL's generate")
        if self.batch_filter not in BATCH_FILTERS:
            raise ValueError(f"batch_filter must be one of {BATCH_FILTERS}, got {self.batch_filter!r}")
        if self.batch_filter == "subset" and not keeps_every_sample(self.objective):
            if self.loss_type not in _SUBSET_LOSSES:
                # verl's micro-batch weights are set through the token-count normaliser of these losses
                raise ValueError(f"batch_filter 'subset' needs loss_type in {_SUBSET_LOSSES}, got {self.loss_type!r}")
            spg, accumulation = self.steps_per_generation, self.gradient_accumulation_steps
            if spg is not None and spg % accumulation:
                raise ValueError(f"batch_filter 'subset' needs steps_per_generation ({spg}) to be a multiple of "
                                 f"gradient_accumulation_steps ({accumulation}): whole optimizer steps per generation")
        if self.group_filter not in GROUP_FILTERS:
            raise ValueError(f"group_filter must be one of {tuple(GROUP_FILTERS)}, got {self.group_filter!r}")
        if refusal(self.objective, self.group_filter):
            raise ValueError(f"group_filter {self.group_filter!r} {refusal(self.objective, self.group_filter)}")
        if self.group_filter_max_batches < 0:
            raise ValueError(f"group_filter_max_batches must be >= 0, got {self.group_filter_max_batches}")
        if self.group_filter != "all" and self.loss_type not in _TOKEN_MEAN_LOSSES:
            # Filtered batches hold stand-in rows (zero loss mask) and micro-batches of uneven sizes: only a
            # token-mean loss leaves both out of its weights.
            raise ValueError(f"group_filter {self.group_filter!r} needs a token-mean loss_type {_TOKEN_MEAN_LOSSES}, "
                             f"got {self.loss_type!r}")
        if self.lambda_psr < 0:
            raise ValueError(f"lambda_psr must be >= 0, got {self.lambda_psr}")
        if not 0 < self.reward_threshold <= 1:
            raise ValueError(f"reward_threshold must be in (0, 1] (rewards lie in [0, 1]), got {self.reward_threshold}")
        if self.objective == "grpo" and self.scale_rewards != "group":
            # nsr.objectives' grpo normalises per group, as TRL does with scale_rewards="group".
            raise ValueError(f"objective 'grpo' needs scale_rewards='group', got {self.scale_rewards!r}")
        if self.objective != "grpo" and self.loss_type not in _TOKEN_MEAN_LOSSES:
            raise ValueError(
                f"objective {self.objective!r} needs a token-mean loss_type {_TOKEN_MEAN_LOSSES}, "
                f"got {self.loss_type!r}"
            )
        cuda = torch.cuda.is_available() and not self.use_cpu
        if self.bf16 is None:
            # Follow the accelerate config's mixed precision when launched by it (DeepSpeed refuses
            # a mismatch, e.g. the fp16 ZeRO-3 offload config for T4s); else bf16 where supported.
            launched_with = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
            if cuda and launched_with in ("bf16", "fp16"):
                self.bf16, self.fp16 = launched_with == "bf16", launched_with == "fp16"
            else:
                self.bf16 = cuda and torch.cuda.is_bf16_supported()
        if not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # accelerate picks no comm backend for CPU ranks by itself, so each launched rank would
            # train alone (num_processes=1). DeepSpeed needs an explicit gloo backend (use_cpu
            # turns DeepSpeed off); plain DDP needs use_cpu (accelerate's MULTI_CPU over gloo).
            if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
                self.ddp_backend = self.ddp_backend or "gloo"
            else:
                self.use_cpu = True
        if not cuda:
            self.dataloader_pin_memory = False  # nothing to pin to; silences torch's warning
        if self.activation_checkpointing is None:
            self.activation_checkpointing = cuda if self.gradient_checkpointing is None else self.gradient_checkpointing
        self.gradient_checkpointing = None  # mirrored from activation_checkpointing by TrainingArguments
        super().__post_init__()
