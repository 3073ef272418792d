"""Pass@k for many problems: vectorised nsr.passk.pass_at_k vs a per-problem Python loop.

    python benchmarks/passk_speed.py [--problems 10000] [--n 256]

Both compute every k in 1, 2, 4, ..., n with the same product formula; the script checks they
agree and prints both times.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nsr.passk import k_values, pass_at_k


def loop_pass_at_k(n: int, c: int, k: int) -> float:
    """The HumanEval reference: 1 - prod_{i=n-c+1}^{n} (1 - k/i), one problem at a time."""
    if n < k:
        return float("nan")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = np.full(args.problems, args.n)
    # skewed correct counts, like real models: many problems near 0 or n
    c = rng.binomial(args.n, rng.beta(0.3, 0.6, size=args.problems))
    ks = k_values(args.n)

    start = time.perf_counter()
    fast = np.stack([pass_at_k(n, c, k) for k in ks], axis=1)
    vectorised = time.perf_counter() - start

    start = time.perf_counter()
    slow = np.array([[loop_pass_at_k(int(ni), int(ci), k) for k in ks] for ni, ci in zip(n, c)])
    looped = time.perf_counter() - start

    assert np.allclose(fast, slow, rtol=1e-9, atol=1e-12), np.abs(fast - slow).max()
    print(f"{args.problems} problems x n={args.n}, k in {ks}")
    print(f"vectorised: {vectorised * 1e3:.1f} ms")
    print(f"python loop: {looped:.2f} s ({looped / vectorised:.0f}x slower)")
    print(f"max |difference|: {np.abs(fast - slow).max():.2e}")


if __name__ == "__main__":
    main()
