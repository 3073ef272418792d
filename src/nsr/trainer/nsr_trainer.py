"""NSRTrainer: TRL's GRPOTrainer with the four objectives, shared-prefix rollouts and loss forward."""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from datasets import IterableDataset
from trl import GRPOTrainer
from trl.extras.profiling import profiling_context
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import shuffle_sequence_dict, split_pixel_values_by_grid, unsplit_pixel_values_by_grid

from nsr.objectives import advantages, keeps_every_sample
from nsr.rewards import full_credit
from nsr.trainer.batch_filter import SKIP, optimizer_steps, subset_slots
from nsr.trainer.group_filter import GROUP_FILTERS, refill_prompts, take_in_order
from nsr.trainer.rollout_rows import join_rows
from nsr.trainer.sampler import EpochSeededRepeatSampler
from nsr.trainer.shared_prefix import can_share_prompts, shared_prefix_logps


class NSRTrainer(GRPOTrainer):
    """GRPOTrainer applying ``args.objective``; accepts any TRL reward function(s).

    A run resumed from a checkpoint equals the uninterrupted run (bit for bit on CPU): the Trainer
    restores weights, optimizer, scheduler and the python / numpy / torch RNG states, and the
    sampler here restores the data order (EpochSeededRepeatSampler); shared-prefix rollouts draw
    their per-prompt seeds from torch's global RNG, which the checkpoint holds. By default nsr train
    generates every step (steps_per_generation 1, num_iterations 1), so no buffered generation spans
    a checkpoint (with more steps per generation: only checkpoints on a generation boundary).

    ``batch_filter="subset"`` (psr, nsr): the samples the objective excludes leave the generation batch
    before it is cut into mini-batches, one optimizer step per mini-batch left (nsr.trainer.batch_filter);
    ``"mask"``: they are masked inside the same optimizer steps every objective takes. Every logged step
    says which rollout batch it trained on (``rollout_batch``), that batch's kept samples
    (``rollout_kept``) and whether it moved the weights (``optimizer_step``).

    ``group_filter`` (nsr.trainer.group_filter) drops whole groups of the generation batch before either
    batch filter sees it, and with ``group_filter_max_batches`` generates more batches until every
    process's share of one generation batch holds surviving groups (``_generate_filtered``); every logged
    step says how many groups its rollout batch generated and kept (``groups_generated``, ``groups_kept``,
    all processes) and the share of positive samples among the kept groups' samples (``kept_positive_share``).
    """

    _prepared_slot = None  # a slot training_step has prepared (see _prepare_inputs)
    _rollout_kept = 0.0  # kept samples of the current generation batch, all processes
    _group_counts = (0.0, 0.0, math.nan)  # its groups generated, groups kept, positive share of the kept samples

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.group_filter_max_batches > 1 and isinstance(self.train_dataset, IterableDataset):
            raise ValueError("group_filter_max_batches > 1 draws refill prompts by index: it needs a map-style "
                             "train_dataset (datasets.Dataset), not an IterableDataset")

    def _get_train_sampler(self, dataset=None):
        stock = super()._get_train_sampler(dataset)
        return EpochSeededRepeatSampler(
            data_source=stock.data_source, mini_repeat_count=stock.mini_repeat_count, batch_size=stock.batch_size,
            repeat_count=stock.repeat_count, shuffle=stock.shuffle, seed=stock.seed)

    def _single_plain_process(self) -> bool:
        """One process, no DeepSpeed or FSDP engine: the model can be used as a plain module."""
        return self.accelerator.num_processes == 1 and not self.is_deepspeed_enabled and not self.is_fsdp_enabled

    def _plain_model(self, model):
        """``model`` without accelerate's containers, unwrapped once per model. accelerate's unwrap_model
        looks DeepSpeed up in the installed packages' metadata on every call (13 ms here, twice a step:
        13% of an embedded-default step); the containers do not change after prepare()."""
        cache = self.__dict__.setdefault("_plain_models", {})
        if cache.get(id(model), (None,))[0] is not model:
            cache[id(model)] = (model, self.accelerator.unwrap_model(model))
        return cache[id(model)][1]

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
        policy = (nullcontext(self._plain_model(self.model_wrapped)) if self._single_plain_process() else
                  unwrap_model_for_generation(self.model_wrapped, self.accelerator,
                                              gather_deepspeed3_params=self.args.ds3_gather_for_generation))
        with profiling_context(self, "shared_prefix_sample"), policy as unwrapped, torch.no_grad():
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
        mode = "train" if self.model.training else "eval"
        if mode == "train" and self.args.group_filter != "all":
            return self._generate_filtered(inputs)
        out, positive, keep = self._score_generation(inputs)
        self._metrics[mode]["kept_samples"].append(float(keep.sum().item()))
        self._rollout_kept = float(keep.sum().item())
        if mode == "train":
            groups = float(len(positive) // self.num_generations)
            self._group_counts = (groups, groups, positive.float().mean().item())
        return out

    def _score_generation(self, inputs):
        """One generation batch, generated and scored by TRL, with the objective's advantages and loss mask.
        Returns it with the gathered (all-process) positives and the samples the objective keeps."""
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
        if self._subsets_batches():  # which rows stay, for the mini-batches (_prepare_inputs)
            out["kept"] = keep[local].to(out["advantages"].device)
        if self.args.objective == "grpo":
            return out, positive, keep  # every sample kept: TRL's loss mask and normaliser stand
        sampled = out["completion_mask"] * out["tool_mask"] if "tool_mask" in out else out["completion_mask"]
        out["sampled_mask"] = sampled  # for the entropy of all sampled completions
        # TRL's loss mask is completion_mask * tool_mask; excluding rows through tool_mask keeps the
        # forward pass (attention, labels) intact, so their token entropies are still computed.
        out["tool_mask"] = sampled * keep[local].unsqueeze(1).to(sampled.dtype)
        # The dapo normaliser counts the tokens of the whole generation batch: count only kept ones.
        # Zero kept tokens is fine: TRL clamps the normaliser to >= 1 and the masked loss is 0.
        out["num_items_in_batch"] = self.accelerator.gather(out["tool_mask"].sum()).sum()
        return out, positive, keep

    def _generate_filtered(self, inputs):
        """A generation batch of `group_filter`'s surviving groups (see nsr.trainer.group_filter).

        Every decision is taken on the gathered rewards, so every process takes the same ones and makes the
        same number of generate calls (collective under ZeRO-3). Groups are TRL's runs of num_generations
        rows in the global (all-process) order; rows stay on the process that generated them. The surviving
        groups are taken in order (the first batch's first, as verl keeps its first train_batch_size prompts)
        while each process holding them has room within its usual share of rows (take_in_order): no process
        trains on more rows than without a filter, so micro-batches keep their size and `subset` its
        mini-batches per generation. While a process has room and group_filter_max_batches allows, another
        batch is generated from refill_prompts. All processes are filled with stand-in rows (no loss) to the
        most any holds, under `mask` to a multiple of steps_per_generation (TRL cuts the batch into that many
        equal micro-batches); the loss normaliser counts the kept tokens of every process."""
        group, rows, cap = self.num_generations, len(inputs), max(self.args.group_filter_max_batches, 1)
        processes, rank = self.accelerator.num_processes, self.accelerator.process_index
        needed = rows * processes // group  # groups of one generation batch, all processes
        local = slice(rank * rows, (rank + 1) * rows)
        room = [rows] * processes
        selections, generated, positives, samples, kept_samples = [], 0, 0, 0, 0
        for generation in range(cap):
            batch = inputs if generation == 0 else self._refill_inputs(generation, rows)
            out, positive, keep = self._score_generation(batch)
            per_group = positive.view(-1, group).sum(dim=1)
            survived = GROUP_FILTERS[self.args.group_filter](per_group, group).tolist()
            taken = torch.tensor(take_in_order(survived, group, rows, room), device=positive.device)
            row_kept = taken.repeat_interleave(group)
            generated += len(per_group)
            positives, samples = positives + int(positive[row_kept].sum()), samples + int(row_kept.sum())
            kept_samples += int(keep[row_kept].sum())
            if "sampled_mask" not in out:  # grpo: TRL's loss mask is every sampled token; stand-ins need one
                sampled = out["completion_mask"] * out["tool_mask"] if "tool_mask" in out else out["completion_mask"]
                out = {**out, "sampled_mask": sampled, "tool_mask": out.get("tool_mask", torch.ones_like(sampled))}
            selections.append((out, row_kept[local].nonzero().flatten().tolist()))
            if not any(room):
                break
        kept_groups = samples // group
        width = max(max(rows - free for free in room), 1)  # the most rows a process holds (all know it)
        if not self._subsets_batches():
            width = -(-width // self.args.steps_per_generation) * self.args.steps_per_generation
        batch = join_rows(selections, self._tokenizer.pad_token_id, stand_ins=width - (rows - room[rank]))
        loss_mask = batch["completion_mask"] * batch["tool_mask"]
        batch["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        self._metrics["train"]["kept_samples"].append(float(kept_samples))
        self._rollout_kept = float(kept_samples)
        self._group_counts = (float(generated), float(kept_groups), positives / samples if samples else math.nan)
        if kept_groups < needed and (cap > 1 or not kept_groups) and self.accelerator.is_main_process:
            outcome = ("training on those" if kept_groups else
                       "no optimizer step" if self._subsets_batches() else "a zero loss")
            print(f"group_filter {self.args.group_filter}: step {self.state.global_step + 1} kept {kept_groups} of "
                  f"{needed} groups in {len(selections)} generation batch(es) (group_filter_max_batches "
                  f"{self.args.group_filter_max_batches}): {outcome}", flush=True)
        return batch

    def _refill_inputs(self, refill: int, rows: int) -> list[dict]:
        """This process's rows of refill batch ``refill``: distinct train prompts (refill_prompts, fixed by seed
        and step) each repeated num_generations times, TRL's layout, cut into per-process slices."""
        groups = rows * self.accelerator.num_processes // self.num_generations
        prompts = refill_prompts(self.args.seed, self.state.global_step, refill, groups, len(self.train_dataset))
        order = [index for index in prompts for _ in range(self.num_generations)]
        start = self.accelerator.process_index * rows
        return [self.train_dataset[index] for index in order[start:start + rows]]

    def _subsets_batches(self) -> bool:
        """Excluded samples leave the batch (batch_filter subset), for an objective that excludes any."""
        return self.args.batch_filter == "subset" and not keeps_every_sample(self.args.objective)

    def _prepare_inputs(self, generation_batch):
        if generation_batch is self._prepared_slot:  # prepared by training_step already
            return generation_batch
        generate_every = self.args.steps_per_generation * self.num_iterations
        fresh = self._step % generate_every == 0 or self._buffered_inputs is None
        if not (self.model.training and fresh and self._subsets_batches()):
            return super()._prepare_inputs(generation_batch)
        # TRL's generation branch (GRPOTrainer._prepare_inputs), with the kept rows cut into the
        # mini-batches of the official update instead of steps_per_generation equal parts.
        batch = self._generate_and_score_completions(generation_batch)
        batch = shuffle_sequence_dict(split_pixel_values_by_grid(batch))
        micro, accumulation = self.args.per_device_train_batch_size, self.args.gradient_accumulation_steps
        kept_here = int(batch["kept"].sum())
        steps = int(self.accelerator.gather(torch.tensor([optimizer_steps(kept_here, micro * accumulation)],
                                                         device=self.accelerator.device)).max())
        slots = subset_slots(batch, batch["kept"], micro_batch=micro, accumulation=accumulation,
                             slots=self.args.steps_per_generation, steps=steps,
                             num_processes=self.accelerator.num_processes)
        self._buffered_inputs = [slot if SKIP in slot else unsplit_pixel_values_by_grid(slot) for slot in slots]
        return self._buffered_inputs[self._step % self.args.steps_per_generation]

    def training_step(self, model, inputs, num_items_in_batch):
        # The slot is prepared here (TRL prepares it inside the Trainer's training_step) so that a
        # step with no mini-batch can be left out before any forward or backward.
        model.train()
        slot = self._prepare_inputs(inputs)  # generates on a generation boundary
        if self._step % self.current_gradient_accumulation_steps == 0:
            self._log_rollout(stepped=SKIP not in slot)
        if SKIP in slot:
            # batch_filter subset, no mini-batch left for this optimizer step: no forward, no backward,
            # so the optimizer finds no gradient and leaves weights, moments and its step count as they
            # are (on every rank alike: the step count is agreed on over all processes).
            self._step += 1
            return torch.zeros((), device=self.args.device)
        self._prepared_slot = slot
        try:
            return super().training_step(model, slot, num_items_in_batch)
        finally:
            self._prepared_slot = None

    def _log_rollout(self, stepped: bool) -> None:
        """Per optimizer step: the rollout (generation) batch it trains on, that batch's kept samples and groups
        (all processes), and whether the step updates the weights (batch_filter subset may leave it out)."""
        metrics = self._metrics["train"]
        micro_steps = self.state.global_step * self.args.gradient_accumulation_steps  # done so far; survives a resume
        metrics["rollout_batch"].append(float(micro_steps // (self.args.steps_per_generation * self.num_iterations)))
        metrics["rollout_kept"].append(self._rollout_kept)
        metrics["optimizer_step"].append(float(stepped))
        for name, value in zip(("groups_generated", "groups_kept", "kept_positive_share"), self._group_counts):
            metrics[name].append(value)

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        # The shared-prefix forward (nsr.trainer.shared_prefix) calls the backbone directly, outside any
        # engine: only for one process without DeepSpeed or FSDP.
        unwrapped = None
        if self.args.shared_prefix_forward and self._single_plain_process():
            unwrapped = self._plain_model(model)
        if unwrapped is not None and can_share_prompts(unwrapped, unwrapped.config.get_text_config(), args, kwargs):
            logps, entropies = shared_prefix_logps(
                unwrapped, input_ids, attention_mask, logits_to_keep, self.temperature,
                kwargs.get("compute_entropy", False), autocast=self.accelerator.autocast,
                cast_lm_head_to_fp32=self.args.cast_lm_head_to_fp32)
            aux = None
        else:
            logps, entropies, aux = super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)
        self._last_entropies = entropies
        return logps, entropies, aux

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
            if totals[1] > 0:
                self._metrics[mode]["entropy"][-1] = (totals[0] / totals[1]).item()
            else:  # only stand-in rows (batch_filter subset): nothing was sampled here
                self._metrics[mode]["entropy"].pop()
        return loss

