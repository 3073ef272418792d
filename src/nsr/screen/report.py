"""nsr.screen's table: its columns, a variant's aggregate row over its seed sets, the CSV frame and
the markdown summary (columns: docs/screening.md)."""

from __future__ import annotations

import math
from pathlib import Path

from nsr.paper_shape import CRITERIA, ROLES
from nsr.screen.grid import AGGREGATE, overrides_text

TRAINED = tuple(r for r in ROLES if r != "base")
FRAGILE_SOLVED = tuple(f"{role}_fragile_solved" for role in ROLES)


def columns() -> list[str]:
    cols = ["variant", "seed_set", "seed_sets", "overrides", "n"]
    for role in ROLES:
        cols += [f"{role}_pass1", f"{role}_passn", f"{role}_malformed"]
    for role in TRAINED:
        cols += [f"{role}_entropy", f"{role}_dpassn", f"{role}_dpassn_lo", f"{role}_dpassn_hi"]
    cols += ["psr_minus_nsr_passn", "fragile_problems", *FRAGILE_SOLVED]
    return [*cols, *CRITERIA, "criteria_held", "wall_s", "details"]


def aggregate(rows: list[dict]) -> dict:
    """A variant's row over its seed sets: means of the numbers, S1-S5 = in how many seed sets the
    criterion holds, wall_s = the sum (the variant's cost). CIs do not average: left empty. A
    fragile share is the mean over the seed sets that have fragile problems; a row stored before
    a column existed counts as NaN there."""
    first = rows[0]
    out = {"variant": first["variant"], "seed_set": AGGREGATE, "seed_sets": len(rows),
           "overrides": first["overrides"], "n": first["n"], "details": ""}
    for col in columns():
        if col in out:
            continue
        values = [r.get(col, math.nan) for r in rows]
        if col in FRAGILE_SOLVED:
            known = [v for v in values if not math.isnan(v)]
            out[col] = sum(known) / len(known) if known else math.nan
        elif col.endswith(("_lo", "_hi")):
            out[col] = math.nan
        elif col in CRITERIA or col == "wall_s":
            out[col] = sum(values)
        else:
            out[col] = sum(values) / len(values)
    return out


def table(rows: list[dict]):
    """Per-run rows in grid order, each variant followed by its aggregate row."""
    import pandas as pd

    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        out += [*mine, aggregate(mine)]
    return pd.DataFrame(out, columns=columns())


def _pair(row, role: str) -> str:
    return f"{row[f'{role}_pass1']:.1f} / {row[f'{role}_passn']:.1f}"


def _fragile(row) -> str:
    if math.isnan(row["fragile_problems"]):  # rows stored before the column existed
        return "–"
    shares = " / ".join("–" if math.isnan(row[f"{r}_fragile_solved"]) else f"{row[f'{r}_fragile_solved']:.0f}"
                        for r in ("base", "psr", "nsr"))
    return f"{row['fragile_problems']:.1f}: {shares}"


def markdown(frame, grid_path: Path, grid: dict, missing: dict[str, str]) -> str:
    """One line per variant (its aggregate row), most criteria holding first, then PSR furthest
    below NSR at k = n (the paper's large-k trade-off)."""
    agg = frame[frame["seed_set"] == AGGREGATE].sort_values(["criteria_held", "psr_minus_nsr_passn"],
                                                              ascending=[False, True])
    seed_sets, confirm = grid.get("seed_sets", {}), grid.get("confirm")
    n = int(agg["n"].iloc[0]) if len(agg) else "n"
    lines = [
        f"# Screen: {grid_path.name}", "",
        f"Config: {grid.get('base_config', 'config/config.yaml')}"
        + (f" + common `{overrides_text(grid['common'])}`" if grid.get("common") else "") + " + seed set + variant. "
        f"Seed sets: " + "; ".join(f"{name} `{overrides_text(o)}`" for name, o in seed_sets.items()) + "."
        + (f" Stage 2 (`confirm`): {', '.join(confirm['variants'])} also on "
           + "; ".join(f"{name} `{overrides_text(o)}`" for name, o in confirm["seed_sets"].items()) + "."
           if confirm else ""),
        "",
        f"Pass@1 / Pass@{n} in %, means over training seeds and then seed sets; S1-S5 (nsr.paper_shape): "
        "in how many seed sets the criterion holds; psr - nsr: Pass@n gap (the paper: <= -2); "
        "malformed: % of NSR's samples; entropy: end held-out token entropy; fragile: problems with base "
        "success rate <= 5% (mean over seed sets) and % of them solved at least once in n by base / psr / nsr; "
        "wall: all seed sets. "
        "Every column per seed set: the CSV next to this file.", "",
        f"| variant | overrides | criteria held (mean) | S1 | S2 | S3 | S4 | S5 | base | grpo | psr | nsr | w-reinforce "
        f"| psr - nsr @{n} | nsr malformed | entropy psr / nsr | fragile problems: % solved base / psr / nsr | wall |",
        "|---|---|---:|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, row in agg.iterrows():
        m = int(row["seed_sets"])
        overrides = f"`{row['overrides']}`" if isinstance(row["overrides"], str) and row["overrides"] else "(none)"
        lines.append(
            f"| {row['variant']} | {overrides} | {row['criteria_held']:.1f} | "
            + " | ".join(f"{int(row[c])}/{m}" for c in CRITERIA) + " | "
            + " | ".join(_pair(row, r) for r in ROLES)
            + f" | {row['psr_minus_nsr_passn']:+.1f} | {row['nsr_malformed']:.1f} | "
            f"{row['psr_entropy']:.3f} / {row['nsr_entropy']:.3f} | {_fragile(row)} | {row['wall_s'] / 60:.0f} min |")
    if missing:
        lines += ["", "Not in the table:", ""] + [f"- {name}: {why}" for name, why in missing.items()]
    return "\n".join(lines) + "\n"
