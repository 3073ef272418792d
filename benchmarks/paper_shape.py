"""Does a finished study show the paper's shape? Checks S1-S5 of issue 10 on its primary test set.

    python benchmarks/paper_shape.py [--results results] [--base base --psr psr --nsr nsr ...]

Reads results/pass_at_k/{method}/all_seeds.json (means over the training seeds) and the last
held-out eval_entropy of results/models/{method}/seed*/train_log.csv, and prints, in percentage
points (k = n = the samples per problem):

    S1 Pass@1: PSR, GRPO and W-REINFORCE each >= base + 3; NSR >= base
    S2 Pass@n: NSR >= base - 1; W-REINFORCE >= base - 1; PSR <= NSR - 2
    S3 W-REINFORCE within 2 of the best method at k = 1 and at k = n
    S4 held-out entropy at the end of training: PSR lowest, NSR highest of the trained methods
    S5 base Pass@1 in [10, 50], base Pass@n <= 95

Exit status 0 when every criterion holds, 1 otherwise (so a sweep can grep or count).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def load(results: Path, methods: dict[str, str]) -> tuple[dict, dict, int]:
    passk, entropy, n = {}, {}, None
    for role, method in methods.items():
        result = json.loads((results / "pass_at_k" / method / "all_seeds.json").read_text())
        n = int(result["n"])
        passk[role] = {k: 100 * result["pass_at_k"][str(k)] for k in (1, n)}
        if role != "base":
            last = []
            for log in sorted((results / "models" / method).glob("seed*/train_log.csv")):
                values = pd.read_csv(log)["eval_entropy"].dropna()
                if len(values):
                    last.append(float(values.iloc[-1]))
            entropy[role] = sum(last) / len(last) if last else float("nan")
    return passk, entropy, n


def criteria(passk: dict, entropy: dict, n: int) -> list[tuple[str, bool, str]]:
    b1, bn = passk["base"][1], passk["base"][n]
    p = {role: values[1] for role, values in passk.items()}
    q = {role: values[n] for role, values in passk.items()}
    trained = [r for r in ("grpo", "psr", "nsr", "w-reinforce") if r in passk]
    out = [
        ("S1", all(p[r] >= b1 + 3 for r in ("psr", "grpo", "w-reinforce")) and p["nsr"] >= b1,
         f"Pass@1 base {b1:.1f}: " + ", ".join(f"{r} {p[r] - b1:+.1f}" for r in trained)),
        ("S2", q["nsr"] >= bn - 1 and q["w-reinforce"] >= bn - 1 and q["psr"] <= q["nsr"] - 2,
         f"Pass@{n} base {bn:.1f}: " + ", ".join(f"{r} {q[r] - bn:+.1f}" for r in trained)
         + f"; psr - nsr {q['psr'] - q['nsr']:+.1f}"),
        ("S3", max(p.values()) - p["w-reinforce"] <= 2 and max(q.values()) - q["w-reinforce"] <= 2,
         f"w-reinforce behind the best: {max(p.values()) - p['w-reinforce']:.1f} at k=1, "
         f"{max(q.values()) - q['w-reinforce']:.1f} at k={n}"),
        ("S4", min(entropy, key=entropy.get) == "psr" and max(entropy, key=entropy.get) == "nsr",
         "held-out entropy " + ", ".join(f"{r} {entropy[r]:.3f}" for r in sorted(entropy, key=entropy.get))),
        ("S5", 10 <= b1 <= 50 and bn <= 95, f"base Pass@1 {b1:.1f}, Pass@{n} {bn:.1f}"),
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", type=Path)
    for role in ("base", "grpo", "psr", "nsr", "w-reinforce"):
        parser.add_argument(f"--{role}", default=role, help=f"method name of {role} in the study (default: {role})")
    args = parser.parse_args()
    methods = {role: getattr(args, role.replace("-", "_")) for role in ("base", "grpo", "psr", "nsr", "w-reinforce")}
    passk, entropy, n = load(args.results, methods)
    rows = criteria(passk, entropy, n)
    for name, ok, detail in rows:
        print(f"{name} {'holds ' if ok else 'FAILS '} {detail}")
    sys.exit(0 if all(ok for _, ok, _ in rows) else 1)


if __name__ == "__main__":
    main()
