"""Screen config variants of the study: a grid of reduced studies, one table row per variant.

A grid file (YAML, e.g. benchmarks/grids/issue16.yaml) names the runs:

    base_config: config/config.yaml      # optional; relative to the repository
    common:                              # dotted overrides for every run (reduced sizes)
      data.test_size: 100
    seed_sets:                           # name -> overrides; every variant runs on each
      s2025: {data.seed: 2025, base.seed: 2025, train.seeds: [2025, 2026]}
      s7: {data.seed: 7, base.seed: 7, train.seeds: [11, 12]}
    variants:                            # name -> overrides
      default: {}
      lr5e-5: {train.learning_rate: 5.0e-5}
    confirm:                             # optional stage 2: chosen variants on seed sets new to the grid
      variants: [lr5e-5]
      seed_sets: {s11: {data.seed: 11, base.seed: 11, train.seeds: [21, 22]}}
    stage: study                         # optional: study (default) or base (stage 0: bases only, no RL)
    bases_from: benchmarks/out/screen/x  # optional: a stage-0 grid's workdir whose bases runs here reuse
    anchors: {recipe: &recipe {...}}     # optional: YAML anchors for variants to merge (`<<: *recipe`)

With ``stage: base`` a run has the base method only and builds results/base_card.csv (subset, base,
the base's samples for every training seed, the card): the row is the card (nsr.base_card) and
which targets of a paper-like base it meets. ``bases_from`` names such a grid's workdir: a run here
whose data and base settings equal one of its finished runs copies that run's subset and base
instead of warm-starting again.

A key is a dotted config path (``train.learning_rate``), a value any YAML value, the syntax of
``benchmarks/embedded_variant.py --set``. Each run's config is base config + common + seed set +
variant, in that order, with the methods base, grpo, psr, nsr and w-reinforce (S1-S5 need all
five); it is written to WORKDIR/<variant>/<seed set>/config.yaml and the whole study runs there
(``snakemake -s REPO/Snakefile --directory ...``). Its row (screen_row.json next to the config)
is reused while the config is unchanged and a dry run finds nothing to do, so re-running the
grid only runs what is new or changed, and keeps the wall time of the run that did the work.

The table (``<output>.csv`` and ``.md``) has one row per variant and seed set with its results,
plus one row per variant (seed_set ``all``) aggregating them; columns: docs/screening.md.

    grid.py       the grid file and each run's config (set_dotted, parse_assignment, apply_override,
                  study_config, overrides_text, load_grid, Run)
    execution.py  one run: the study under Snakemake (snakemake), its row (collect), reuse of a stored
                  row and of another run's subset and base (reuse_base), execute
    report.py     the table: columns, aggregate rows, the CSV frame and the markdown summary
    export.py     a finished run's card, tables and figures copied into docs/ (export_runs, EXPORTED)
    cli.py        screen() (the whole grid) and main() (benchmarks/screen.py)
"""

from nsr.screen.cli import main, screen
from nsr.screen.execution import ROW_FILE, STAGE_TARGETS, collect, collect_card, execute, reuse_base, snakemake
from nsr.screen.export import EXPORTED, export_runs
from nsr.screen.grid import (AGGREGATE, DEFAULT_CONFIG, REPO, STAGES, Run, apply_override, base_sources,
                             default_workdir, load_grid, overrides_text, parse_assignment, set_dotted, study_config)
from nsr.screen.report import CARD_COLUMNS, FRAGILE_SOLVED, TRAINED, aggregate, columns, markdown, table

__all__ = ["AGGREGATE", "CARD_COLUMNS", "DEFAULT_CONFIG", "EXPORTED", "FRAGILE_SOLVED", "REPO", "ROW_FILE", "Run", "STAGES",
           "STAGE_TARGETS", "TRAINED", "aggregate", "apply_override", "base_sources", "collect", "collect_card",
           "columns", "default_workdir", "execute", "export_runs", "load_grid", "main", "markdown", "overrides_text",
           "parse_assignment", "reuse_base", "screen", "set_dotted", "snakemake", "study_config", "table"]
