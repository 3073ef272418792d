"""nsr.screen's command (benchmarks/screen.py): run a grid's (selected) variants and write its table."""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable

from nsr.io import InputError, atomic_path
from nsr.screen.execution import _stored_row, execute
from nsr.screen.export import export_runs
from nsr.screen.grid import REPO, base_sources, default_workdir, load_grid
from nsr.screen.report import markdown, table


def screen(grid_path: Path, workdir: Path, output: Path, cores: str | int = "all", only: Iterable[str] = (),
           jobs_parallel: int = 1, log=print, run: bool = True) -> tuple[Any, dict[str, str], dict[str, str]]:
    """Run the grid's (selected) variants, write ``output``.csv/.md over every variant with a
    current result, and return (the table, {run: why it is not in the table}, {run: why it failed})."""
    grid, runs = load_grid(grid_path, workdir)
    sources = [*runs, *base_sources(grid, Path(grid_path))]  # where a run may copy its subset and base from
    only = set(only)
    unknown = sorted(only - {r.variant for r in runs})
    if unknown:
        raise InputError(f"--only: {unknown} not in {grid_path}'s variants {sorted({r.variant for r in runs})}")
    selected = [i for i, r in enumerate(runs) if run and (not only or r.variant in only)]
    failed: dict[str, str] = {}

    def attempt(index: int) -> dict | None:
        run = runs[index]
        try:
            return execute(run, cores, log, sources)
        except (InputError, RuntimeError) as error:
            # One broken variant (a key another branch adds, a failed job) must not stop the grid.
            failed[f"{run.variant}/{run.seed_set}"] = str(error).splitlines()[0]
            log(f"{run.variant}/{run.seed_set}: {error}")
            return None

    with ThreadPoolExecutor(max_workers=max(1, jobs_parallel)) as pool:
        done = dict(zip(selected, pool.map(attempt, selected)))
    rows, missing = [], dict(failed)
    for index, run in enumerate(runs):
        row = done[index] if index in done else _stored_row(run)
        if row is not None:
            rows.append(row)
        elif index not in done:
            missing[f"{run.variant}/{run.seed_set}"] = "not run yet (or its config changed since)"
    # A variant is only compared over all its seed sets: a partial one would bias the aggregate.
    complete = {v for v in {r.variant for r in runs}
                if sum(row["variant"] == v for row in rows) == sum(r.variant == v for r in runs)}
    frame = table([r for r in rows if r["variant"] in complete], grid.get("stage", "study"))
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output.with_suffix(".csv")) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(output.with_suffix(".md")) as tmp:
        tmp.write_text(markdown(frame, Path(grid_path), grid, missing))
    return frame, missing, failed


def main(argv: list[str] | None = None) -> None:
    # the description: the first line of the package docstring (which documents the grid format)
    parser = argparse.ArgumentParser(description=sys.modules[__package__].__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path, help="grid file (YAML), e.g. benchmarks/grids/issue16.yaml")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the studies run (default: benchmarks/out/screen/<grid name>)")
    parser.add_argument("--output", type=Path, default=None,
                        help="table path without suffix; .csv and .md are written "
                             "(default: docs/screening/<grid name>)")
    parser.add_argument("--only", nargs="+", default=[], metavar="VARIANT", help="run only these variants")
    parser.add_argument("--cores", default="all", help="snakemake --cores of each study")
    parser.add_argument("--jobs-parallel", type=int, default=1, help="studies run at once (each with --cores)")
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: write the table from the stored rows (screen_row.json) whose config "
                             "is the grid's, even if code changed since they ran")
    parser.add_argument("--export", nargs="+", default=[], metavar="VARIANT",
                        help="copy these variants' cards, difficulty and Pass@k tables and figures (every seed "
                             "set, finished) next to the table: <output>/<variant>/<seed set>/ (nsr.screen.export)")
    args = parser.parse_args(argv)
    stem = args.grid.stem
    workdir = (args.workdir or default_workdir(args.grid)).resolve()
    output = args.output or REPO / "docs" / "screening" / stem
    try:
        _, _, failed = screen(args.grid, workdir, output, args.cores, args.only, args.jobs_parallel,
                              run=not args.table_only)
        if args.export:
            copies = export_runs(load_grid(args.grid, workdir)[1], args.export, output)
            print(f"exported {len(copies)} files to {output}/")
    except InputError as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    print(f"wrote {output.with_suffix('.csv')} and {output.with_suffix('.md')}")
    print(output.with_suffix(".md").read_text())
    sys.exit(1 if failed else 0)
