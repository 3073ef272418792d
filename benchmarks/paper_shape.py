"""Does a finished study show the paper's shape? Checks S1-S5 of issue 10 on its primary test set.

    python benchmarks/paper_shape.py [--results results] [--base base --psr psr --nsr nsr ...]

Prints, in percentage points (k = n = the samples per problem), the criteria of nsr.paper_shape:

    S1 Pass@1: PSR, GRPO and W-REINFORCE each >= base + 3; NSR >= base
    S2 Pass@n: NSR >= base - 1; W-REINFORCE >= base - 1; PSR <= NSR - 2
    S3 W-REINFORCE within 2 of the best method at k = 1 and at k = n
    S4 held-out entropy at the end of training: PSR lowest, NSR highest of the trained methods
    S5 base Pass@1 in [10, 70], base Pass@n <= 97

Exit status 0 when every criterion holds, 1 otherwise (so a sweep can grep or count).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nsr.paper_shape import ROLES, criteria, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", type=Path)
    for role in ROLES:
        parser.add_argument(f"--{role}", default=role, help=f"method name of {role} in the study (default: {role})")
    args = parser.parse_args()
    methods = {role: getattr(args, role.replace("-", "_")) for role in ROLES}
    passk, entropy, n = load(args.results, methods)
    rows = criteria(passk, entropy, n)
    for name, ok, detail in rows:
        print(f"{name} {'holds ' if ok else 'FAILS '} {detail}")
    sys.exit(0 if all(ok for _, ok, _ in rows) else 1)


if __name__ == "__main__":
    main()
