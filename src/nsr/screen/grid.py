"""nsr.screen's grid files: the configs of a grid's runs (base config + common + seed set +
variant); ``--set``'s dotted overrides (benchmarks/embedded_variant.py, benchmarks/base_prior.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from nsr.io import InputError
from nsr.paper_shape import ROLES
from nsr.study_config import WORKFLOW_DIR

REPO = WORKFLOW_DIR
DEFAULT_CONFIG = REPO / "config" / "config.yaml"
AGGREGATE = "all"  # seed_set of a variant's aggregate row
# What a grid's runs are: whole studies judged by S1-S5 (nsr.paper_shape), or bases only, judged by
# their card (nsr.base_card: subset, base, the base's samples, results/base_card.csv; no RL).
STAGES = ("study", "base")
STAGE_METHODS = {"study": ROLES, "base": ("base",)}


# --- configs -----------------------------------------------------------------------------

def set_dotted(config: dict, key: str, value: Any) -> None:
    """config[a][b][c] = value for key "a.b.c", creating mappings on the way."""
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InputError(f"{key}: {part!r} is not a mapping in the config")
    node[last] = value


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """"dotted.key=YAML value" -> (key, value)."""
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise InputError(f"--set {assignment!r}: expected dotted.key=value")
    return key, yaml.safe_load(value)


def apply_override(config: dict, assignment: str) -> None:
    set_dotted(config, *parse_assignment(assignment))


def study_config(overrides: Iterable[tuple[str, Any]], base_config: Path = DEFAULT_CONFIG,
                 methods: Iterable[str] | None = None) -> dict:
    """``base_config`` with ``overrides`` (key, value) applied in order; only ``methods`` when given."""
    config = yaml.safe_load(Path(base_config).read_text())
    for key, value in overrides:
        set_dotted(config, key, value)
    if methods is not None:
        methods = list(methods)
        unknown = sorted(set(methods) - set(config["methods"]))
        if unknown:
            raise InputError(f"methods {unknown} not in the config's methods {list(config['methods'])}")
        config["methods"] = {m: config["methods"][m] for m in methods}
    return config


def overrides_text(overrides: dict) -> str:
    """One line: ``key=value; key=value`` with values as YAML flow text (as --set takes them)."""
    def flow(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()

    return "; ".join(f"{key}={flow(value)}" for key, value in overrides.items())


# --- the grid ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    variant: str
    seed_set: str
    overrides: dict       # the variant's own
    config: dict          # base config + common + seed set + variant
    workdir: Path
    stage: str = "study"  # STAGES


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a mapping of dotted.key: value, got {type(value).__name__}")
    return value


def load_grid(path: Path, workdir: Path) -> tuple[dict, list[Run]]:
    """(the grid file's content, every variant x seed set run in grid order)."""
    grid = yaml.safe_load(Path(path).read_text()) or {}
    # `anchors`: YAML anchors for the variants to merge (`<<: *name`), e.g. one base recipe under several RL
    # settings; not read otherwise.
    known = {"base_config", "common", "seed_sets", "variants", "confirm", "stage", "bases_from", "anchors"}
    unknown = sorted(set(grid) - known)
    if unknown:
        raise InputError(f"{path}: unknown top-level key(s) {unknown}")
    stage = grid.get("stage", "study")
    if stage not in STAGES:
        raise InputError(f"{path}: stage: {stage!r} is not one of {', '.join(STAGES)}")
    base_config = REPO / grid.get("base_config", "config/config.yaml")
    common = _mapping(grid.get("common"), f"{path}: common")
    seed_sets = _mapping(grid.get("seed_sets"), f"{path}: seed_sets")
    variants = _mapping(grid.get("variants"), f"{path}: variants")
    if len(seed_sets) < 2:
        raise InputError(f"{path}: seed_sets: give at least 2 (data/base/training seeds), so an effect is "
                         "seen on more than one draw")
    if not variants:
        raise InputError(f"{path}: variants: none")
    for name in [*seed_sets, *variants]:
        if not str(name) or "/" in str(name) or str(name) == AGGREGATE or str(name).startswith("."):
            raise InputError(f"{path}: {name!r} cannot name a variant or seed set (it is a folder name)")
    plan = [(variant, seed_set) for variant in variants for seed_set in seed_sets]
    confirm = _mapping(grid.get("confirm"), f"{path}: confirm")
    if confirm:  # stage 2: chosen variants on seed sets never used while choosing them
        extra_sets = _mapping(confirm.get("seed_sets"), f"{path}: confirm.seed_sets")
        chosen = confirm.get("variants") or []
        if set(confirm) - {"seed_sets", "variants"} or not extra_sets or not isinstance(chosen, list) or not chosen:
            raise InputError(f"{path}: confirm: give seed_sets (name -> overrides) and variants (a list of names)")
        unknown = sorted(set(chosen) - set(variants))
        if unknown:
            raise InputError(f"{path}: confirm.variants: {unknown} are not variants of the grid")
        reused = sorted(set(extra_sets) & set(seed_sets))
        if reused:
            raise InputError(f"{path}: confirm.seed_sets {reused} are stage-1 seed sets: confirm on new ones")
        seed_sets = {**seed_sets, **extra_sets}
        plan += [(variant, seed_set) for variant in chosen for seed_set in extra_sets]
    for name in seed_sets:
        if not str(name) or "/" in str(name) or str(name) == AGGREGATE or str(name).startswith("."):
            raise InputError(f"{path}: {name!r} cannot name a seed set (it is a folder name)")
    runs = []
    for variant, seed_set in plan:
        overrides = _mapping(variants[variant], f"{path}: variants.{variant}")
        seeds = _mapping(seed_sets[seed_set], f"{path}: seed_sets.{seed_set}")
        items = [*common.items(), *seeds.items(), *overrides.items()]
        config = study_config(items, base_config, methods=STAGE_METHODS[stage])
        runs.append(Run(str(variant), str(seed_set), overrides, config, workdir / str(variant) / str(seed_set), stage))
    return grid, runs


def base_sources(grid: dict, grid_path: Path) -> list[Run]:
    """The finished runs in the folder ``bases_from`` names (another grid's workdir, e.g. a stage-0
    grid's benchmarks/out/screen/<name>; relative to the repository): a run of this grid whose data
    and base settings equal one of them starts from its subset and base instead of building them
    again (nsr.screen.execution.reuse_base)."""
    source = grid.get("bases_from")
    if not source:
        return []
    folder = Path(source) if Path(source).is_absolute() else REPO / source
    if not folder.is_dir():
        raise InputError(f"{grid_path}: bases_from: no such folder {source} (run that grid first)")
    return [Run(path.parent.parent.name, path.parent.name, {}, yaml.safe_load(path.read_text()), path.parent)
            for path in sorted(folder.glob("*/*/config.yaml"))]


def default_workdir(grid_path: Path) -> Path:
    """Where a grid's studies run unless told otherwise: benchmarks/out/screen/<grid name>."""
    return REPO / "benchmarks" / "out" / "screen" / Path(grid_path).stem
