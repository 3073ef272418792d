"""Does a finished study show the paper's shape? Checks S1-S5 of issue 10 on its primary test set.

Reads results/pass_at_k/{method}/all_seeds.json (means over the training seeds) and the last
held-out eval_entropy of results/models/{method}/seed*/train_log.csv; in percentage points
(k = n = the samples per problem):

    S1 Pass@1: PSR, GRPO and W-REINFORCE each >= base + 3; NSR >= base
    S2 Pass@n: NSR >= base - 1; W-REINFORCE >= base - 1; PSR <= NSR - 2
    S3 W-REINFORCE within 2 of the best method at k = 1 and at k = n
    S4 held-out entropy at the end of training: PSR lowest, NSR highest of the trained methods
    S5 base Pass@1 in [10, 70], base Pass@n <= 97 (room both ways; the paper's base, Qwen2.5-Math-7B on
       MATH, is at 63.2 and 96.9)

Used by benchmarks/paper_shape.py (one study) and nsr.screen (a grid of studies).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

ROLES = ("base", "grpo", "psr", "nsr", "w-reinforce")
CRITERIA = ("S1", "S2", "S3", "S4", "S5")
# S5: a base with room to gain at k = 1 and to lose at k = n, anchored to the paper's own base
# (Qwen2.5-Math-7B on MATH: Pass@1 63.2, Pass@256 96.9, Table 1), which [10, 50] / <= 95 rejected.
S5_PASS_AT_1 = (10.0, 70.0)
S5_PASS_AT_N_MAX = 97.0


def load(results: Path, methods: dict[str, str]) -> tuple[dict, dict, int]:
    """(Pass@1 and Pass@n in % per role, end held-out entropy per trained role, n); ``methods``
    maps each role of ROLES to its method name in the study."""
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
    """(name, holds, detail) for S1-S5."""
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
        ("S5", S5_PASS_AT_1[0] <= b1 <= S5_PASS_AT_1[1] and bn <= S5_PASS_AT_N_MAX,
         f"base Pass@1 {b1:.1f}, Pass@{n} {bn:.1f}"),
    ]
    return out
