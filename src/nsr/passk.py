"""Unbiased Pass@k with bootstrap CIs and seed aggregation; the `nsr passk` command.

Estimator (Chen et al. 2021): pass@k = 1 - C(n-c, k) / C(n, k) per problem, evaluated as the
numerically stable product 1 - prod_{i=n-c+1}^{n} (1 - k/i), vectorised over problems.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nsr.io import InputError, write_json
from nsr.sampling.formats import read_samples_table

REQUIRED_COLUMNS = ("problem_id", "correct")
DEFAULT_TEST_SET = "test"  # the study's own test set (results/data/test.parquet)


def pass_at_k(n, c, k: int) -> np.ndarray:
    """Per-problem unbiased pass@k for sample counts ``n`` and correct counts ``c``.

    Problems with n < k get NaN (not estimable, so not reported). The product over
    i in (n-c, n] is taken in log space as a difference of one shared cumulative sum, so
    there is no Python loop over problems and no underflow for large n.
    """
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n.shape != c.shape:
        raise ValueError(f"n and c differ in shape: {n.shape} vs {c.shape}")
    if np.any(c < 0) or np.any(c > n):
        raise ValueError("need 0 <= c <= n for every problem")
    out = np.full(n.shape, np.nan)
    valid = n >= k
    if not valid.any():
        return out
    nv, cv = n[valid], c[valid]
    # log_prod[m] = sum_{i=k+1}^{m} log(1 - k/i); zero for m <= k (those terms never occur:
    # when n - c < k some subset of size k always contains a correct sample -> pass@k = 1).
    i = np.arange(k + 1, int(nv.max()) + 1)
    log_prod = np.concatenate([np.zeros(k + 1), np.cumsum(np.log1p(-k / i))])
    lower = nv - cv
    log_fail = log_prod[nv] - log_prod[np.maximum(lower, k)]
    out[valid] = np.where(lower < k, 1.0, -np.expm1(log_fail)) + 0.0  # + 0.0: no -0.0
    return out


def k_values(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    n = int(n)
    if n < 1:
        return []
    ks = [1 << p for p in range(n.bit_length()) if (1 << p) <= n]
    return ks if ks[-1] == n else ks + [n]


def bootstrap_ci(values: np.ndarray, num_bootstrap: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of the mean over problems, for each column of ``values`` [P, K].

    Each replicate's resampled problems become per-problem counts (one bincount), so a block
    of replicates is one matrix product; blocks only bound memory for many problems.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float).T).T  # [P] -> [P, 1]
    num_problems = values.shape[0]
    rng = np.random.default_rng(seed)
    block = max(1, 2_000_000 // num_problems)
    means = []
    for start in range(0, num_bootstrap, block):
        size = min(block, num_bootstrap - start)
        picks = rng.integers(0, num_problems, size=(size, num_problems))
        picks += np.arange(size)[:, None] * num_problems  # row offsets: one bincount for all
        counts = np.bincount(picks.ravel(), minlength=size * num_problems).reshape(size, num_problems)
        means.append(counts @ values / num_problems)
    means = np.concatenate(means)  # [B, K]
    tail = (1.0 - level) / 2 * 100
    return np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)


def paired_difference(values: np.ndarray, reference: np.ndarray, num_bootstrap: int = 1000, seed: int = 0,
                      level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``values - reference`` over problems and its paired percentile bootstrap CI.

    Rows are the same problems in both ([P] or [P, K]); each replicate resamples problems once
    for both, so the shared difficulty of a problem cancels and the CI is far tighter than two
    separate CIs.
    """
    values, reference = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    if values.shape != reference.shape:
        raise ValueError(f"paired values differ in shape: {values.shape} vs {reference.shape}")
    diff = values - reference
    lo, hi = bootstrap_ci(diff, num_bootstrap, seed, level)
    return diff.mean(axis=0), lo, hi


def load_samples(path: str | Path, extra_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Rows (problem_id, correct: bool, *extra_columns) from a samples parquet, JSON list or JSONL file
    (format by content)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"samples file {path} does not exist")
    try:
        frame = read_samples_table(path)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is an unreadable file
        raise InputError(f"samples file {path} is unreadable: {type(exc).__name__}: {exc}") from exc
    if frame.empty:
        raise InputError(f"samples file {path} has no rows")
    missing = [col for col in (*REQUIRED_COLUMNS, *extra_columns) if col not in frame.columns]
    if missing:
        raise InputError(f"samples file {path} lacks column(s) {missing} (has {list(frame.columns)})")
    ids = frame["problem_id"]
    scalar = ids.map(lambda v: isinstance(v, (str, int, np.integer)) and not isinstance(v, (bool, np.bool_)))
    if not scalar.all():
        bad = ids[~scalar.to_numpy(dtype=bool)].iloc[0]
        raise InputError(f"samples file {path}: column 'problem_id' must be strings or integers, found {bad!r}")
    # ids as strings so that files of one method match whatever format wrote them
    return pd.DataFrame({"problem_id": ids.astype(str).to_numpy(), "correct": _as_flags(frame["correct"], path),
                         **{col: frame[col].to_numpy() for col in extra_columns}})


def _as_flags(correct: pd.Series, path: Path) -> np.ndarray:
    """'correct' as bools; accepts bool or numeric 0/1 (no strings, no missing values)."""
    if correct.isna().any():
        raise InputError(f"samples file {path}: column 'correct' has missing values")
    if pd.api.types.is_bool_dtype(correct):
        return correct.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(correct):
        good = correct.isin([0, 1])
    else:  # object column from mixed JSON: only bools and 0/1 numbers pass
        good = correct.map(lambda v: isinstance(v, (bool, np.bool_))
                           or (isinstance(v, (int, float, np.number)) and v in (0, 1)))
    if not good.all():
        bad = correct[~good.to_numpy(dtype=bool)].iloc[0]
        raise InputError(f"samples file {path}: column 'correct' must be bool or 0/1, found {bad!r}")
    return correct.astype(float).to_numpy() == 1.0


def counts_per_problem(samples: pd.DataFrame) -> pd.DataFrame:
    """problem_id, n (samples), c (correct samples), sorted by problem_id."""
    grouped = samples.groupby("problem_id", sort=True)["correct"]
    return pd.DataFrame({"n": grouped.size(), "c": grouped.sum()}).reset_index()


def per_problem_table(counts: pd.DataFrame, ks: Sequence[int]) -> np.ndarray:
    """[P, K] per-problem pass@k."""
    return np.stack([pass_at_k(counts["n"], counts["c"], k) for k in ks], axis=1)


def _seed_from_name(path: Path) -> int | None:
    match = re.search(r"seed[_-]?(\d+)", path.stem)
    return int(match.group(1)) if match else None


def evaluate(paths: Sequence[str | Path], method: str | None = None, seeds: Sequence[int | None] | None = None,
             num_bootstrap: int = 1000, bootstrap_seed: int = 0, test_set: str = DEFAULT_TEST_SET) -> dict:
    """Pass@k summary (DESIGN.md JSON) for one samples file, or several seeds of one method.

    k runs over 1, 2, 4, ..., n_min where n_min is the smallest per-problem sample count over
    all files (a larger k is not estimable for some problem, so it is not reported).
    With several files: "pass_at_k" is the mean over seeds, plus "seeds", "per_seed" and "std";
    "ci95" bootstraps problems of the seed-averaged per-problem values.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("--samples-path: give at least one samples file")
    if seeds is None or len(seeds) == 0:
        seeds = [_seed_from_name(p) for p in paths]
    if len(seeds) != len(paths):
        raise InputError(f"--seed: {len(seeds)} seed(s) for {len(paths)} samples file(s)")
    method = method or paths[0].parent.name
    counts = [counts_per_problem(load_samples(p)) for p in paths]
    n_min = min(int(cnt["n"].min()) for cnt in counts)
    ks = k_values(n_min)
    tables = [per_problem_table(cnt, ks) for cnt in counts]
    per_seed = np.stack([t.mean(axis=0) for t in tables])  # [S, K]
    # seed-averaged value per problem (problems missing from a seed average the others)
    pooled = pd.concat([pd.DataFrame(t, index=cnt["problem_id"].to_numpy()) for t, cnt in zip(tables, counts)])
    averaged = pooled.groupby(level=0).mean()
    per_problem = averaged.to_numpy()
    lo, hi = bootstrap_ci(per_problem, num_bootstrap, bootstrap_seed)

    def by_k(values) -> dict:
        return {str(k): float(v) for k, v in zip(ks, values)}

    result = {
        "method": method,
        "test_set": test_set,
        "seed": seeds[0] if len(paths) == 1 else list(seeds),
        "n": n_min,
        "num_problems": int(per_problem.shape[0]),
        "pass_at_k": by_k(per_seed.mean(axis=0)),
        "ci95": {str(k): [float(a), float(b)] for k, a, b in zip(ks, lo, hi)},
        "bootstrap": {"replicates": int(num_bootstrap), "seed": int(bootstrap_seed)},
        # seed-averaged per-problem values: what paired comparisons between methods resample
        "per_problem": {"problem_id": [str(p) for p in averaged.index],
                        "pass_at_k": {str(k): [float(v) for v in per_problem[:, j]] for j, k in enumerate(ks)}},
    }
    if len(paths) > 1:
        result["seeds"] = list(seeds)
        result["per_seed"] = [by_k(row) for row in per_seed]
        result["std"] = by_k(per_seed.std(axis=0, ddof=1))
    return result


def format_lines(result: dict) -> list[str]:
    """The seed guide's printout: "Pass@k Results:", then "  Pass@1: 65.14%" per k (± seed std when aggregated)."""
    lines = ["Pass@k Results:"]
    for k, value in result["pass_at_k"].items():
        line = f"  Pass@{k}: {value:.2%}"
        if "std" in result:
            line += f" ± {result['std'][k]:.2%} over {len(result['seeds'])} seeds"
        lines.append(line)
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples-path", "--samples", dest="samples", nargs="+", required=True,
                        help="samples file(s) of `nsr sample`: .json / .jsonl / .parquet, the format read from "
                             "the content; several = seeds of one method")
    parser.add_argument("--method-name", "--method", dest="method", default=None,
                        help="method name (default: the samples file's folder)")
    parser.add_argument("--seed", type=int, nargs="*", default=None,
                        help="seed of each samples file (default: parsed from 'seed<N>' in the name)")
    parser.add_argument("--test-set", default=DEFAULT_TEST_SET,
                        help="name of the test set the samples are from (a panel of the comparison plot)")
    parser.add_argument("--output-path", "--output", dest="output", default=None,
                        help="pass_at_k JSON to write (atomically)")
    parser.add_argument("--num-bootstrap", type=int, default=1000, help="bootstrap replicates for the 95%% CI")
    parser.add_argument("--bootstrap-seed", type=int, default=0)


def run(args: argparse.Namespace) -> None:
    if args.num_bootstrap < 1:
        raise InputError(f"--num-bootstrap must be >= 1, got {args.num_bootstrap}")
    result = evaluate(args.samples, args.method, args.seed, args.num_bootstrap, args.bootstrap_seed, args.test_set)
    print(f"{result['method']} on {result['test_set']}: {result['num_problems']} problems, n={result['n']}")
    print("\n".join(format_lines(result)))
    if args.output:
        write_json(args.output, result)
        print(f"wrote {args.output}")
