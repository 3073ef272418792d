"""Trainer callbacks: the per-step CSV log and the held-out evaluation (step 0 and every N steps)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from transformers import TrainerCallback

from nsr.io import atomic_path
from nsr.rewards import full_credit


class TrainLogCallback(TrainerCallback):
    """Appends one row per logged step to a CSV; on resume keeps the rows up to the checkpoint's step.

    Per step: the rollout batch it trains on (``rollout_batch``), that batch's samples the objective keeps
    (``rollout_kept``), whether the weights moved (``optimizer_step``), the batch's groups generated and
    kept by ``group_filter`` (``groups_generated``, ``groups_kept``, all processes; equal without a filter)
    and the share of positive samples among the kept groups' samples (``kept_positive_share``).

    `seconds` is wall time since the start of training, so it cannot repeat between runs: a resumed
    run continues it from the last kept row (it stays increasing); every other column of a resumed
    run equals the uninterrupted run's.

    ``extra_columns`` are copied from the step's logs when present (e.g. HeldOutEvalCallback's
    eval_entropy / eval_accuracy) and left empty otherwise. ``step_zero`` (e.g.
    HeldOutEvalCallback.step_zero, which evaluates the start policy in its on_train_begin, so list
    it before this callback) gives the values of a step-0 row written first by a fresh run: the
    base's point of every curve. A resumed run keeps that row as it keeps the others.
    """

    COLUMNS = ("step", "loss", "reward_mean", "frac_correct", "kept_samples", "rollout_batch", "rollout_kept",
               "optimizer_step", "groups_generated", "groups_kept", "kept_positive_share", "entropy", "learning_rate",
               "seconds")
    _SOURCES = {"loss": "loss", "reward_mean": "reward", "frac_correct": "frac_correct",
                "kept_samples": "kept_samples", "rollout_batch": "rollout_batch", "rollout_kept": "rollout_kept",
                "optimizer_step": "optimizer_step", "groups_generated": "groups_generated",
                "groups_kept": "groups_kept", "kept_positive_share": "kept_positive_share", "entropy": "entropy",
                "learning_rate": "learning_rate"}
    # whole numbers, written as such
    _COUNTS = ("rollout_batch", "rollout_kept", "optimizer_step", "groups_generated", "groups_kept")

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
        row.update({col: int(row[col]) for col in self._COUNTS if row.get(col) is not None})
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
        from nsr.rewards import row_scoring, score
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
                scorings = row_scoring(batch)  # exact numeric matching changes what counts as correct
                for tokens, answer, scoring in zip(greedy, batch["answer"], scorings):
                    text = tokenizer.decode(tokens[0], skip_special_tokens=True)
                    greedy_correct += float(full_credit(score(text, str(answer), *scoring)))
                seeds = [problem_seed(self.seed, pid) for pid in batch["problem_id"]]
                sampled, entropies = shared_prefix_sample(model, ids, self.num_samples, temperature=self.temperature,
                                                          seeds=seeds, return_entropies=True, **kw)
                for pid, answer, scoring, per_prompt, per_entropy in zip(batch["problem_id"], batch["answer"], scorings,
                                                                         sampled, entropies):
                    for idx, (tokens, values) in enumerate(zip(per_prompt, per_entropy)):
                        text = tokenizer.decode(tokens, skip_special_tokens=True)
                        rows.append((str(pid), idx, text, bool(full_credit(score(text, str(answer), *scoring)))))
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

