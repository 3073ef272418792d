"""nsr.screen's table: its columns, a variant's aggregate row over its seed sets, the CSV frame and
the markdown summary (columns: docs/screening.md)."""

from __future__ import annotations

import math
from pathlib import Path

from nsr.base_card import CARD_CHECKS
from nsr.paper_shape import CRITERIA, ROLES
from nsr.screen.grid import AGGREGATE, overrides_text

TRAINED = tuple(r for r in ROLES if r != "base")
FRAGILE_SOLVED = tuple(f"{role}_fragile_solved" for role in ROLES)
# The base card's numbers (nsr.base_card, its `all` row) as card_<name> columns, and its targets.
CARD_COLUMNS = ("pass1", "pass_at_n", "mode_right", "headroom", "fragile_5", "fragile_1", "solved", "malformed",
                "distinct_answers")
MEETS = tuple(f"meets_{name}" for name in CARD_CHECKS)
TEXT_COLUMNS = ("card_fragile_types", "details")  # per seed set only: the aggregate row leaves them empty


def card_columns() -> list[str]:
    return [*(f"card_{c}" for c in CARD_COLUMNS), "card_fragile_types", *MEETS, "card_held"]


def columns(stage: str = "study") -> list[str]:
    """The CSV's columns of a grid's stage: a study's results and its base card, or the card alone."""
    cols = ["variant", "seed_set", "seed_sets", "overrides"]
    if stage == "base":
        return [*cols, *card_columns(), "wall_s"]
    cols.append("n")
    for role in ROLES:
        cols += [f"{role}_pass1", f"{role}_passn", f"{role}_malformed"]
    for role in TRAINED:
        cols += [f"{role}_entropy", f"{role}_dpassn", f"{role}_dpassn_lo", f"{role}_dpassn_hi"]
    cols += ["psr_minus_nsr_passn", "fragile_problems", *FRAGILE_SOLVED]
    return [*cols, *CRITERIA, "criteria_held", *card_columns(), "wall_s", "details"]


def aggregate(rows: list[dict], stage: str = "study") -> dict:
    """A variant's row over its seed sets: means of the numbers, S1-S5 and the card's targets = in how
    many seed sets the criterion holds, wall_s = the sum (the variant's cost). CIs do not average: left
    empty. A fragile share is the mean over the seed sets that have fragile problems; a row stored before
    a column existed counts as NaN there."""
    first = rows[0]
    out = {"variant": first["variant"], "seed_set": AGGREGATE, "seed_sets": len(rows),
           "overrides": first["overrides"], **dict.fromkeys(TEXT_COLUMNS, "")}
    if "n" in first:
        out["n"] = first["n"]
    for col in columns(stage):
        if col in out:
            continue
        values = [r.get(col, math.nan) for r in rows]
        if col in FRAGILE_SOLVED:
            known = [v for v in values if not math.isnan(v)]
            out[col] = sum(known) / len(known) if known else math.nan
        elif col.endswith(("_lo", "_hi")):
            out[col] = math.nan
        elif col in CRITERIA or col in MEETS or col == "wall_s":
            out[col] = sum(values)
        else:
            out[col] = sum(values) / len(values)
    return out


def table(rows: list[dict], stage: str = "study"):
    """Per-run rows in grid order, each variant followed by its aggregate row."""
    import pandas as pd

    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        out += [*mine, aggregate(mine, stage)]
    return pd.DataFrame(out, columns=columns(stage))


def _pair(row, role: str) -> str:
    return f"{row[f'{role}_pass1']:.1f} / {row[f'{role}_passn']:.1f}"


def _fragile(row) -> str:
    if math.isnan(row["fragile_problems"]):  # rows stored before the column existed
        return "–"
    shares = " / ".join("–" if math.isnan(row[f"{r}_fragile_solved"]) else f"{row[f'{r}_fragile_solved']:.0f}"
                        for r in ("base", "psr", "nsr"))
    return f"{row['fragile_problems']:.1f}: {shares}"


def _header(grid_path: Path, grid: dict) -> list[str]:
    seed_sets, confirm = grid.get("seed_sets", {}), grid.get("confirm")
    return [
        f"# Screen: {grid_path.name}", "",
        f"Config: {grid.get('base_config', 'config/config.yaml')}"
        + (f" + common `{overrides_text(grid['common'])}`" if grid.get("common") else "") + " + seed set + variant. "
        f"Seed sets: " + "; ".join(f"{name} `{overrides_text(o)}`" for name, o in seed_sets.items()) + "."
        + (f" Stage 2 (`confirm`): {', '.join(confirm['variants'])} also on "
           + "; ".join(f"{name} `{overrides_text(o)}`" for name, o in confirm["seed_sets"].items()) + "."
           if confirm else ""),
        "",
    ]


def _overrides(row) -> str:
    return f"`{row['overrides']}`" if isinstance(row["overrides"], str) and row["overrides"] else "(none)"


def _missing(missing: dict[str, str]) -> list[str]:
    return ["", "Not in the table:", ""] + [f"- {name}: {why}" for name, why in missing.items()] if missing else []


def card_markdown(frame, grid_path: Path, grid: dict, missing: dict[str, str]) -> str:
    """A stage-0 grid (bases only): one line per variant, most card targets met first, then the
    highest headroom."""
    agg = frame[frame["seed_set"] == AGGREGATE].sort_values(["card_held", "card_headroom"], ascending=[False, False])
    lines = [
        *_header(grid_path, grid),
        "The base card (nsr.base_card) of each variant's base, from its own samples (every base seed pooled), "
        "means over seed sets; targets (in how many seed sets each is met): mode right >= 60, headroom >= 10, "
        "fragile (success rate <= 5%) >= 10% of the problems, spread over two question types (each >= 20% of "
        "them), malformed <= 3%, room (S5: Pass@1 in [10, 70], Pass@n <= 97). Fragile by type: the first seed set's "
        "counts (every seed set: the CSV next to this file).", "",
        "| variant | overrides | targets met (mean) | " + " | ".join(CARD_CHECKS) + " | Pass@1 / Pass@n | mode right "
        "| headroom | fragile ≤5% / ≤1% | fragile by type | malformed | distinct | wall |",
        "|---|---|---:|" + "---|" * len(CARD_CHECKS) + "---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for _, row in agg.iterrows():
        m = int(row["seed_sets"])
        types = frame[(frame["variant"] == row["variant"]) & (frame["seed_set"] != AGGREGATE)]["card_fragile_types"]
        first_types = types.iloc[0] if len(types) and isinstance(types.iloc[0], str) else ""
        lines.append(
            f"| {row['variant']} | {_overrides(row)} | {row['card_held']:.1f} | "
            + " | ".join("n/a" if math.isnan(row[c]) else f"{int(row[c])}/{m}" for c in MEETS) + " | "
            f"{row['card_pass1']:.1f} / {row['card_pass_at_n']:.1f} | {row['card_mode_right']:.1f} | "
            f"{row['card_headroom']:.1f} | {row['card_fragile_5']:.1f} / {row['card_fragile_1']:.1f} | {first_types} | "
            f"{row['card_malformed']:.1f} | {row['card_distinct_answers']:.1f} | {row['wall_s'] / 60:.0f} min |")
    return "\n".join(lines + _missing(missing)) + "\n"


def markdown(frame, grid_path: Path, grid: dict, missing: dict[str, str]) -> str:
    """One line per variant (its aggregate row), most criteria holding first, then PSR furthest
    below NSR at k = n (the paper's large-k trade-off). A stage-0 grid: card_markdown."""
    if grid.get("stage", "study") == "base":
        return card_markdown(frame, grid_path, grid, missing)
    agg = frame[frame["seed_set"] == AGGREGATE].sort_values(["criteria_held", "psr_minus_nsr_passn"],
                                                              ascending=[False, True])
    n = int(agg["n"].iloc[0]) if len(agg) else "n"
    lines = [
        *_header(grid_path, grid),
        f"Pass@1 / Pass@{n} in %, means over training seeds and then seed sets; S1-S5 (nsr.paper_shape): "
        "in how many seed sets the criterion holds; psr - nsr: Pass@n gap (the paper: <= -2); "
        "malformed: % of NSR's samples; entropy: end held-out token entropy; fragile: problems with base "
        "success rate <= 5% (mean over seed sets) and % of them solved at least once in n by base / psr / nsr; "
        "card: base card targets met (of 6; mode right / headroom of the base's own samples, nsr.base_card); "
        "wall: all seed sets. "
        "Every column per seed set: the CSV next to this file.", "",
        f"| variant | overrides | criteria held (mean) | S1 | S2 | S3 | S4 | S5 | base | grpo | psr | nsr | w-reinforce "
        f"| psr - nsr @{n} | nsr malformed | entropy psr / nsr | fragile problems: % solved base / psr / nsr "
        "| card: met, mode / headroom | wall |",
        "|---|---|---:|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, row in agg.iterrows():
        m = int(row["seed_sets"])
        lines.append(
            f"| {row['variant']} | {_overrides(row)} | {row['criteria_held']:.1f} | "
            + " | ".join(f"{int(row[c])}/{m}" for c in CRITERIA) + " | "
            + " | ".join(_pair(row, r) for r in ROLES)
            + f" | {row['psr_minus_nsr_passn']:+.1f} | {row['nsr_malformed']:.1f} | "
            f"{row['psr_entropy']:.3f} / {row['nsr_entropy']:.3f} | {_fragile(row)} | {_card(row)} | "
            f"{row['wall_s'] / 60:.0f} min |")
    return "\n".join(lines + _missing(missing)) + "\n"


def _card(row) -> str:
    if math.isnan(row["card_held"]):  # rows stored before the card existed
        return "–"
    return f"{row['card_held']:.1f}, {row['card_mode_right']:.1f} / {row['card_headroom']:.1f}"
