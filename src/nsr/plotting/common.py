"""Shared by nsr.plotting's figures (and nsr.coverage's, nsr.forms_cli's, nsr.answer_distributions_cli's):
one colour per method in every figure; a figure saved atomically, with its .csv and .md tables next to it."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from nsr.io import atomic_path

# Known methods keep one colour in every figure; other names take the following colours.
KNOWN_METHODS = ("base", "grpo", "psr", "nsr", "w-reinforce")


def method_palette(methods: Sequence[str]) -> dict:
    colors = sns.color_palette("colorblind", 10)
    known = [m for m in methods if m.lower() in KNOWN_METHODS]
    others = [m for m in dict.fromkeys(methods) if m.lower() not in KNOWN_METHODS]
    palette = {m: colors[KNOWN_METHODS.index(m.lower())] for m in known}
    palette.update({m: colors[(len(KNOWN_METHODS) + i) % len(colors)] for i, m in enumerate(others)})
    return palette


def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        # the temp name has no image suffix, so the format comes from the target
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi)


def write_figure_and_tables(fig: Figure, table: pd.DataFrame, markdown: str | None, output: str | Path,
                            float_format: str | None = "%.6g") -> None:
    """``output`` (the figure) plus the ``.csv`` and ``.md`` tables with its stem (no ``.md`` for
    ``markdown`` None); NaN = empty cell."""
    output = Path(output)
    with atomic_path(output.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False, float_format=float_format)
    if markdown is not None:
        with atomic_path(output.with_suffix(".md")) as tmp:
            tmp.write_text(markdown)
    save_figure(fig, output)
