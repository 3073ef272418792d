"""TRL GRPOTrainer subclass that trains with one of the four objectives of nsr.objectives.

Every objective sees binary rewards, as in the paper: a sample is positive iff its gathered reward
>= reward_threshold (with graded rewards the threshold decides how much partial credit counts;
1.0 means fully correct only). The trainer replaces this process's advantages by those of
nsr.objectives on that split (grpo: TRL's group-normalised advantages of the 0/1 reward). For psr /
nsr / w-reinforce it also zeroes the loss mask of excluded samples and recomputes the token-count
denominator, so excluded samples leave both the loss and its normaliser (the official code drops
them from the batch). The loss mask is TRL's completion_mask * tool_mask; excluding through
tool_mask, not the attention mask, keeps the forward pass unchanged and lets entropy cover every
sampled completion. ``frac_correct`` in the logs counts full credit (the task's accuracy), not
positives.

Two things TRL would repeat per row are done once per prompt (each switchable in NSRConfig):
rollouts come from nsr.sampling's shared-prefix decoder, the sampler evaluation uses
(``rollout_sampler``), and the loss forward runs each distinct prompt once and shares its KV cache,
kept in the autograd graph, with its rows (``shared_prefix_forward``). Same distribution, same
loss and gradient as TRL's paths (tests/test_rollouts.py, tests/test_trainer.py); on the embedded
default a step costs about a third of the CPU time (benchmarks/train_speed.py).
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer
from trl.models import unwrap_model_for_generation
from trl.extras.profiling import profiling_context
from trl.trainer.utils import RepeatSampler

from nsr.io import atomic_path
from nsr.objectives import advantages, methods
from nsr.rewards import full_credit

# Loss types whose normaliser is a token count over the (masked) batch, so excluded rows drop out of it.
# "grpo"/"sapo"/"luspo" average over rows and "dr_grpo" over a fixed length: excluded rows would still dilute.
_TOKEN_MEAN_LOSSES = ("dapo", "bnpo", "cispo")
ROLLOUT_SAMPLERS = ("shared_prefix", "trl")
# Arguments of TRL's loss forward that a text-only batch leaves None (the rest are image inputs).
_PLAIN_FORWARD_KWARGS = ("compute_entropy", "compute_aux_loss", "batch_size")
# Config fields that make a model's logits more than its LM head's output (TRL's fused head knows them).
_LOGIT_SCALINGS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")


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
    reward_threshold: float = field(
        default=0.5, metadata={"help": "A sample is positive iff its reward >= this (1.0: fully correct only)."})
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


class EpochSeededRepeatSampler(RepeatSampler):
    """TRL's RepeatSampler whose order of an epoch depends on (seed, epoch) only.

    TRL's sampler draws one permutation per pass from a generator seeded once, so the sampler of a
    resumed run (a fresh one) would replay the first epoch's order in a later epoch. The Trainer
    calls set_epoch before every epoch (also the one a resume starts in, before skipping its
    trained batches); each pass then reseeds and draws as many permutations as an uninterrupted
    run had drawn by that epoch, so its order is the one the uninterrupted run uses.
    """

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if self.shuffle and self.seed is not None:
            self.generator.manual_seed(self.seed)
            for _ in range(self.epoch):
                torch.randperm(self.num_samples, generator=self.generator)
        return super().__iter__()


class NSRTrainer(GRPOTrainer):
    """GRPOTrainer applying ``args.objective``; accepts any TRL reward function(s).

    A run resumed from a checkpoint equals the uninterrupted run (bit for bit on CPU): the Trainer
    restores weights, optimizer, scheduler and the python / numpy / torch RNG states, and the
    sampler here restores the data order (EpochSeededRepeatSampler); shared-prefix rollouts draw
    their per-prompt seeds from torch's global RNG, which the checkpoint holds. By default nsr train
    generates every step (steps_per_generation 1, num_iterations 1), so no buffered generation spans
    a checkpoint (with more steps per generation: only checkpoints on a generation boundary).
    """

    def _get_train_sampler(self, dataset=None):
        stock = super()._get_train_sampler(dataset)
        return EpochSeededRepeatSampler(
            data_source=stock.data_source, mini_repeat_count=stock.mini_repeat_count, batch_size=stock.batch_size,
            repeat_count=stock.repeat_count, shuffle=stock.shuffle, seed=stock.seed)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        """Rollouts from nsr.sampling's shared-prefix decoder (``args.rollout_sampler``), the sampler that
        evaluation uses. TRL lays a generation batch out as each prompt repeated ``num_generations``
        times in a row; each block is prefilled once and its KV cache repeated over the block, where
        generate() would prefill every row. The draws come from per-prompt generators seeded from
        torch's global RNG, which the Trainer checkpoints, so a resumed run draws what an
        uninterrupted one draws. Completions keep their EOS token, as TRL's do."""
        if self.use_vllm or self.args.rollout_sampler != "shared_prefix" or images is not None or multimodal_fields:
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        from nsr.sampling.decoding import shared_prefix_sample

        blocks = [prompt_ids[i:i + num_generations] for i in range(0, len(prompt_ids), num_generations)]
        if len(prompt_ids) % num_generations or any(any(ids != block[0] for ids in block) for block in blocks):
            blocks, num_generations = [[ids] for ids in prompt_ids], 1  # not TRL's layout: one row per prompt
        seeds = torch.randint(0, 2**62, (len(blocks),)).tolist()
        with (
            profiling_context(self, "shared_prefix_sample"),
            unwrap_model_for_generation(self.model_wrapped, self.accelerator,
                                        gather_deepspeed3_params=self.args.ds3_gather_for_generation) as unwrapped,
            torch.no_grad(),
        ):
            was_training = unwrapped.training
            unwrapped.eval()  # as generate(): no dropout while sampling
            try:
                per_prompt = shared_prefix_sample(
                    unwrapped, [block[0] for block in blocks], num_generations,
                    max_new_tokens=self.max_completion_length, eos_token_id=self.eos_token_ids,
                    pad_token_id=self._tokenizer.pad_token_id, temperature=self.temperature,
                    top_p=self.top_p if self.top_p is not None else 1.0, seeds=seeds, keep_eos=True)
            finally:
                unwrapped.train(was_training)
        return [ids for rows in per_prompt for ids in rows], None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # Keep the gathered (all-process) rewards: TRL does not return them from the scoring step.
        self._rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        return self._rewards_per_func

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        per_func = self._rewards_per_func
        rewards = (per_func * self.reward_weights.to(per_func.device).unsqueeze(0)).nansum(dim=1)
        scorable = ~torch.isnan(per_func).all(dim=1)  # every reward func returned None: no signal
        positive = (rewards >= self.args.reward_threshold) & scorable
        self._metrics[mode]["frac_correct"].append((full_credit(rewards) & scorable).float().mean().item())
        group = self.num_generations if mode == "train" else self.num_generations_eval
        adv, keep = advantages(positive, self.args.objective, self.args.lambda_psr, group_size=group)
        keep &= scorable
        adv = torch.where(scorable, adv, 0.0)  # as TRL: an unscorable completion does not move the policy
        start = self.accelerator.process_index * len(inputs)
        local = slice(start, start + len(inputs))
        out["advantages"] = adv[local].to(out["advantages"])
        self._metrics[mode]["kept_samples"].append(float(keep.sum().item()))
        if self.args.objective == "grpo":
            return out  # every sample kept: TRL's loss mask and normaliser stand
        sampled = out["completion_mask"] * out["tool_mask"] if "tool_mask" in out else out["completion_mask"]
        out["sampled_mask"] = sampled  # for the entropy of all sampled completions
        # TRL's loss mask is completion_mask * tool_mask; excluding rows through tool_mask keeps the
        # forward pass (attention, labels) intact, so their token entropies are still computed.
        out["tool_mask"] = sampled * keep[local].unsqueeze(1).to(sampled.dtype)
        # The dapo normaliser counts the tokens of the whole generation batch: count only kept ones.
        # Zero kept tokens is fine: TRL clamps the normaliser to >= 1 and the masked loss is 0.
        out["num_items_in_batch"] = self.accelerator.gather(out["tool_mask"].sum()).sum()
        return out

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        if self._can_share_prompts(model, args, kwargs):
            logps, entropies = self._shared_prefix_logps(model, input_ids, attention_mask, logits_to_keep,
                                                         kwargs.get("compute_entropy", False))
            aux = None
        else:
            logps, entropies, aux = super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)
        self._last_entropies = entropies
        return logps, entropies, aux

    def _can_share_prompts(self, model, args, kwargs) -> bool:
        """Whether the loss forward may share prompts (``args.shared_prefix_forward``): a plain text causal LM
        whose logits are its LM head's output (no soft-capping or scaling), no MoE aux loss, and one
        process without DeepSpeed or FSDP (the backbone is called directly, outside any engine)."""
        if (not self.args.shared_prefix_forward or args or kwargs.get("compute_aux_loss")
                or any(v is not None for k, v in kwargs.items() if k not in _PLAIN_FORWARD_KWARGS)
                or self.accelerator.num_processes > 1 or self.is_deepspeed_enabled or self.is_fsdp_enabled):
            return False
        text_config = self.accelerator.unwrap_model(model).config.get_text_config()
        return all(getattr(text_config, name, None) in (None, 1.0) for name in _LOGIT_SCALINGS)

    def _shared_prefix_logps(self, model, input_ids, attention_mask, logits_to_keep, compute_entropy):
        """Per-token log-probabilities (and entropies) of the completions at ``self.temperature``, as TRL's
        loss forward computes them, but each distinct prompt goes through the model once: its KV cache
        (still in the autograd graph) is gathered for the rows that share it, and only completion tokens
        run per row. The same function as the full forward (RoPE attention sees the same relative
        positions); the prompt, most of the embedded default's tokens, costs 1/num_generations."""
        unwrapped = self.accelerator.unwrap_model(model)
        backbone = getattr(unwrapped, unwrapped.base_model_prefix)
        width = input_ids.size(1) - logits_to_keep
        # TRL shuffles a generation batch's rows before the loss: find each row's prompt by value.
        prompts, owner = torch.unique(torch.cat([input_ids[:, :width], attention_mask[:, :width]], dim=1), dim=0,
                                      return_inverse=True)
        positions = torch.arange(input_ids.size(1), device=input_ids.device)
        with self.accelerator.autocast():
            prompt = backbone(input_ids=prompts[:, :width], attention_mask=prompts[:, width:], use_cache=True,
                              position_ids=positions[:width].expand(len(prompts), -1))
            # The hidden state before completion token t predicts it: the prompt's last, then the completion's own.
            hidden = [prompt.last_hidden_state[owner, -1:]]
            if logits_to_keep > 1:
                cache = prompt.past_key_values
                cache.batch_select_indices(owner)
                hidden.append(backbone(input_ids=input_ids[:, width:-1], attention_mask=attention_mask[:, :-1],
                                       cache=cache, use_cache=True,
                                       position_ids=positions[width:-1].expand(len(input_ids), -1)).last_hidden_state)
            hidden = torch.cat(hidden, dim=1)
            if self.args.cast_lm_head_to_fp32:
                hidden = hidden.float()
            logits = unwrapped.get_output_embeddings()(hidden).float() / self.temperature
        log_probs = logits.log_softmax(-1)
        logps = log_probs.gather(-1, input_ids[:, width:, None]).squeeze(-1)
        entropies = -(log_probs.exp() * log_probs).sum(-1).detach() if compute_entropy else None
        return logps, entropies

    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        sampled = inputs.get("sampled_mask")
        if sampled is not None and self._last_entropies is not None:
            # TRL averaged entropy over the loss mask (kept samples only); report it over every sampled
            # completion instead, so `entropy` means the same for all objectives.
            mode = "train" if self.model.training else "eval"
            ent = self._last_entropies.detach()
            totals = torch.stack([(ent * sampled).sum(), sampled.sum().float()])
            totals = self.accelerator.reduce(totals, reduction="sum")
            self._metrics[mode]["entropy"][-1] = (totals[0] / totals[1].clamp(min=1.0)).item()
        return loss


class TrainLogCallback(TrainerCallback):
    """Appends one row per logged step to a CSV; on resume keeps the rows up to the checkpoint's step.

    `seconds` is wall time since the start of training, so it cannot repeat between runs: a resumed
    run continues it from the last kept row (it stays increasing); every other column of a resumed
    run equals the uninterrupted run's.

    ``extra_columns`` are copied from the step's logs when present (e.g. HeldOutEvalCallback's
    eval_entropy / eval_accuracy) and left empty otherwise. ``step_zero`` (e.g.
    HeldOutEvalCallback.step_zero, which evaluates the start policy in its on_train_begin, so list
    it before this callback) gives the values of a step-0 row written first by a fresh run: the
    base's point of every curve. A resumed run keeps that row as it keeps the others.
    """

    COLUMNS = ("step", "loss", "reward_mean", "frac_correct", "kept_samples", "entropy", "learning_rate", "seconds")
    _SOURCES = {"loss": "loss", "reward_mean": "reward", "frac_correct": "frac_correct",
                "kept_samples": "kept_samples", "entropy": "entropy", "learning_rate": "learning_rate"}

    def __init__(self, path: str | Path, extra_columns: tuple[str, ...] = (), step_zero=None):
        self.path = Path(path)
        self.step_zero = step_zero
        self.columns = self.COLUMNS + tuple(extra_columns)
        self._sources = {**self._SOURCES, **{c: c for c in extra_columns}}
        self._offset = 0.0
        self._start = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()
        if not state.is_world_process_zero:
            return
        rows = []
        if self.path.exists() and state.global_step > 0:
            with self.path.open(newline="") as f:
                # Rows after the resumed checkpoint are redone by this run; a fresh run (step 0) keeps none.
                # A row cut short by a kill (missing cells: None) is dropped.
                rows = [r for r in csv.DictReader(f) if None not in r.values() and int(r["step"]) <= state.global_step]
        self._offset = float(rows[-1]["seconds"]) if rows else 0.0
        first = self.step_zero() if self.step_zero is not None and state.global_step == 0 else {}
        if first:  # before training started: 0 seconds (the clock starts after the evaluation)
            rows.append({**{col: first.get(key) for col, key in self._sources.items()}, "step": 0, "seconds": 0.0})
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as f:
            # A resumed log written with other extra columns keeps its rows (missing cells empty).
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return  # the end-of-training summary has no per-step loss
        row = {col: logs.get(key) for col, key in self._sources.items()}
        row.update(step=state.global_step, seconds=round(self._offset + time.perf_counter() - self._start, 3))
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns).writerow(row)


class HeldOutEvalCallback(TrainerCallback):
    """Evaluates the policy on held-out problems before the first update (step 0: the start policy)
    and every ``every`` optimizer steps (the paper's Figure 4 view, plus its large-k trade-off):

    - eval_entropy: token-mean entropy of the policy's sampling distribution (logits / temperature)
      over the ``num_samples`` completions sampled per problem at the training temperature, i.e. the
      entropy of generated responses, measured as TRL's training ``entropy`` column is;
    - eval_accuracy: fraction of problems whose greedy completion is correct (full credit, as Pass@k);
    - eval_pass_at_1, eval_pass_at_k: unbiased Pass@1 and Pass@k (nsr.passk.pass_at_k) of those
      samples, mean over problems, with k = ``num_samples`` (the largest k they allow; logged as
      ``eval_k``, so the column name stays the same whatever k is): where coverage starts to fall;
    - eval_malformed: share of the samples that are malformed (nsr.forms: neither correct nor a
      possible answer of the right form), where the probability that NSR frees up may go.

    Sampling seeds are fixed per problem (nsr.sampling.decoding.problem_seed), so the curve is not
    noise from reseeding, and step 0 of every method trained from one base with one seed is the same.
    Every process evaluates the same problems (ZeRO-3 forwards are collective).

    Results are added to the logs of the same step, so TrainLogCallback (listed after this callback)
    writes them; step 0 has no training log, TrainLogCallback writes it from ``step_zero()``. With
    ``samples_path`` every evaluation's samples are kept in a parquet file (one row per step,
    problem_id, sample_idx: completion, answer_text (extracted), correct, form), the source of the
    logged numbers; a resumed run keeps the rows up to its checkpoint's step, as the log does.
    """

    COLUMNS = ("eval_entropy", "eval_accuracy", "eval_pass_at_1", "eval_pass_at_k", "eval_k", "eval_malformed")
    SAMPLE_COLUMNS = ("step", "problem_id", "sample_idx", "completion", "answer_text", "correct", "form")

    def __init__(self, problems, processing, every: int, *, max_new_tokens: int, temperature: float = 1.0,
                 num_samples: int = 4, seed: int = 0, batch_size: int = 8, samples_path: str | Path | None = None):
        if every < 1 or num_samples < 1 or batch_size < 1:
            raise ValueError("HeldOutEvalCallback needs every, num_samples and batch_size >= 1")
        self.problems = problems.reset_index(drop=True)
        self.processing = processing
        self.every, self.max_new_tokens, self.temperature = every, max_new_tokens, temperature
        self.num_samples, self.batch_size = num_samples, batch_size
        self.seed = seed
        self.samples_path = Path(samples_path) if samples_path is not None else None
        self.last_samples = None  # the latest evaluation's samples (nsr.forms.classify's columns)
        self._kept = []  # sample frames of the evaluations so far (a resumed run starts with the kept ones)
        self._pending: dict[str, float] = {}
        self._step_zero: dict[str, float] = {}

    def evaluate(self, model) -> dict[str, float]:
        import pandas as pd

        from nsr.forms import classify
        from nsr.rewards import score
        from nsr.sampling.decoding import encode_problems, eos_ids, problem_seed, shared_prefix_sample
        from nsr.vlm import tokenizer_of

        tokenizer = tokenizer_of(self.processing)
        eos = eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
        images = "image" in self.problems.columns
        was_training = model.training
        model.eval()
        entropy_sum = entropy_count = greedy_correct = 0.0
        rows = []
        try:
            for start in range(0, len(self.problems), self.batch_size):
                batch = self.problems.iloc[start:start + self.batch_size]
                ids, extra = encode_problems(self.processing, model, list(batch["prompt"]),
                                             list(batch["image"]) if images else None)
                kw = dict(max_new_tokens=self.max_new_tokens, eos_token_id=eos, pad_token_id=pad, extra_inputs=extra)
                greedy = shared_prefix_sample(model, ids, 1, temperature=0, **kw)
                for tokens, answer in zip(greedy, batch["answer"]):
                    text = tokenizer.decode(tokens[0], skip_special_tokens=True)
                    greedy_correct += float(full_credit(score(text, str(answer))))
                seeds = [problem_seed(self.seed, pid) for pid in batch["problem_id"]]
                sampled, entropies = shared_prefix_sample(model, ids, self.num_samples, temperature=self.temperature,
                                                          seeds=seeds, return_entropies=True, **kw)
                for pid, answer, per_prompt, per_entropy in zip(batch["problem_id"], batch["answer"], sampled, entropies):
                    for idx, (tokens, values) in enumerate(zip(per_prompt, per_entropy)):
                        text = tokenizer.decode(tokens, skip_special_tokens=True)
                        rows.append((str(pid), idx, text, bool(full_credit(score(text, str(answer))))))
                        entropy_sum += sum(values)
                        entropy_count += len(values)
        finally:
            model.train(was_training)
        samples = pd.DataFrame(rows, columns=["problem_id", "sample_idx", "completion", "correct"])
        self.last_samples = classify(self.problems, samples)
        return {"eval_entropy": entropy_sum / max(entropy_count, 1.0),
                "eval_accuracy": greedy_correct / len(self.problems),
                **self.sample_metrics(self.last_samples, self.num_samples)}

    @staticmethod
    def sample_metrics(samples, k: int) -> dict[str, float]:
        """eval_pass_at_1 / eval_pass_at_k / eval_k / eval_malformed of classified samples (n = k per problem)."""
        from nsr.passk import pass_at_k

        counts = samples.groupby("problem_id", sort=False)["correct"].agg(["size", "sum"])
        n, c = counts["size"].to_numpy(), counts["sum"].to_numpy()
        return {"eval_pass_at_1": float(pass_at_k(n, c, 1).mean()), "eval_pass_at_k": float(pass_at_k(n, c, k).mean()),
                "eval_k": k, "eval_malformed": float((samples["form"] == "malformed").mean())}

    def step_zero(self) -> dict[str, float]:
        """The start policy's evaluation (a fresh run's step 0), once; {} otherwise."""
        values, self._step_zero = self._step_zero, {}
        return values

    def _record(self, state) -> None:
        """Adds the latest evaluation's samples at ``state.global_step`` and rewrites the samples file."""
        if self.samples_path is None or not state.is_world_process_zero:
            return
        import pandas as pd

        from nsr.io import write_parquet

        self._kept.append(self.last_samples.assign(step=state.global_step)[list(self.SAMPLE_COLUMNS)])
        write_parquet(self.samples_path, pd.concat(self._kept, ignore_index=True))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._kept = []
        if self.samples_path is not None and state.global_step > 0 and self.samples_path.exists():
            import pandas as pd

            # Evaluations after the resumed checkpoint are redone by this run.
            kept = pd.read_parquet(self.samples_path)
            self._kept = [kept[kept["step"] <= state.global_step]]
        if state.global_step == 0:  # a fresh run: evaluate the start policy before any update
            self._step_zero = self.evaluate(model)
            self._record(state)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self._pending = self.evaluate(model)
            self._record(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._pending and logs is not None and "loss" in logs:
            logs.update(self._pending)
            self._pending = {}

