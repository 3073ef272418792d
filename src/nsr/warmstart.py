"""Warm-start phases of the embedded base: what each phase trains on and how long (no torch here).

A base with skill and uncertainty takes two phases: clean targets until the skill is learned,
then a short noisy phase (a noisy teacher, maybe with a blind spot, or one whose accuracy falls
with the problem's difficulty) that gives the prior its uncertainty. Each phase has its own steps,
learning rate, batch size and teacher (nsr.teacher).
The flat settings (`base.warmstart.steps` ..., `nsr base --warmstart-*`) are every phase's
defaults; without phases they are the one phase, which is the warm-start as it always was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nsr.io import InputError
from nsr.teacher import BLIND_SPOTS, DIFFICULTIES, Teacher

EMBEDDED = "embedded"  # base.model of the tiny model built and warm-started here
# Phase settings (config keys, `--warmstart-phase` keys) -> type, defaults of the flat settings.
PHASE_KEYS = {"steps": int, "learning_rate": float, "batch_size": int, "teacher_accuracy": float,
              "teacher_noise": float, "teacher_decay": float, "blind_spot": str, "blind_spot_escape": float,
              "teacher_difficulty": str, "teacher_hard_gap": float, "teacher_easy_gap": float,
              "teacher_hard_accuracy": float, "teacher_systematic": float}
DEFAULTS = {"steps": 420, "learning_rate": 1e-3, "batch_size": 32, "teacher_accuracy": 1.0, "teacher_noise": 0.3,
            "teacher_decay": 1.0, "blind_spot": "none", "blind_spot_escape": 0.0, "teacher_difficulty": "none",
            "teacher_hard_gap": 2.0, "teacher_easy_gap": 10.0, "teacher_hard_accuracy": 0.1, "teacher_systematic": 1.0}
# Bounds of each numeric setting, as the config schema says them too.
_BOUNDS = {"steps": (lambda v: v >= 0, ">= 0"), "learning_rate": (lambda v: v > 0, "> 0"),
           "batch_size": (lambda v: v >= 1, ">= 1"), "teacher_accuracy": (lambda v: 0 <= v <= 1, "in [0, 1]"),
           "teacher_noise": (lambda v: v > 0, "> 0"), "teacher_decay": (lambda v: 0 < v <= 1, "in (0, 1]"),
           "blind_spot_escape": (lambda v: 0 <= v <= 1, "in [0, 1]"), "teacher_hard_gap": (lambda v: v >= 0, ">= 0"),
           "teacher_easy_gap": (lambda v: v > 0, "> 0"), "teacher_hard_accuracy": (lambda v: 0 <= v <= 1, "in [0, 1]"),
           "teacher_systematic": (lambda v: 0 <= v <= 1, "in [0, 1]")}
CHOICES = {"blind_spot": BLIND_SPOTS, "teacher_difficulty": DIFFICULTIES}  # settings with named values


@dataclass(frozen=True)
class Phase:
    steps: int
    learning_rate: float
    batch_size: int = DEFAULTS["batch_size"]
    teacher: Teacher = field(default_factory=Teacher)


def make_phase(settings: dict, where: str, question_types=None) -> Phase:
    """A Phase from settings (values as Python or as text); InputError names ``where`` and the key.
    With the warm-start problems' ``question_types``, a phase with steps whose teacher difficulty or
    blind spot acts on none of them is refused too."""
    unknown = sorted(set(settings) - set(PHASE_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown setting(s) {unknown}; known: {list(PHASE_KEYS)}")
    values = {}
    for key, kind in PHASE_KEYS.items():
        raw = settings.get(key, DEFAULTS[key])
        try:
            value = kind(raw) if kind is not int or float(raw) == int(float(raw)) else None
        except (TypeError, ValueError):
            value = None
        if value is None:
            raise InputError(f"{where}.{key}: must be {'an integer' if kind is int else 'a number'}, got {raw!r}")
        if key in CHOICES and value not in CHOICES[key]:
            raise InputError(f"{where}.{key}: {value!r} is not one of {', '.join(CHOICES[key])}")
        if key in _BOUNDS and not _BOUNDS[key][0](value):
            raise InputError(f"{where}.{key}: must be {_BOUNDS[key][1]}, got {raw!r}")
        values[key] = int(float(raw)) if kind is int else value
    teacher = Teacher(values["teacher_accuracy"], values["teacher_noise"], values["teacher_decay"],
                      values["blind_spot"], values["blind_spot_escape"], values["teacher_difficulty"],
                      values["teacher_hard_gap"], values["teacher_easy_gap"], values["teacher_hard_accuracy"],
                      values["teacher_systematic"])
    _check_teacher(teacher, where, question_types if values["steps"] else None)
    return Phase(values["steps"], values["learning_rate"], values["batch_size"], teacher)


def _check_teacher(teacher: Teacher, where: str, question_types) -> None:
    """What no single key's bounds say: a difficulty curve that falls (the keys only count with
    teacher_difficulty: gap), and, given the problems' ``question_types``, a teacher with work to do."""
    if teacher.difficulty != "none":
        if not teacher.hard_gap < teacher.easy_gap:
            raise InputError(f"{where}.teacher_hard_gap: must be < teacher_easy_gap ({teacher.easy_gap:g}), "
                             f"got {teacher.hard_gap:g}")
        if teacher.hard_accuracy > teacher.accuracy:
            raise InputError(f"{where}.teacher_hard_accuracy: must be <= teacher_accuracy ({teacher.accuracy:g}): "
                             f"the accuracy falls with difficulty, got {teacher.hard_accuracy:g}")
    idle = teacher.idle_setting(question_types) if question_types else None
    if idle:
        key = "teacher_difficulty" if idle[0] == "difficulty" else idle[0]
        raise InputError(f"{where}.{key}: {idle[1]}; the warm-start problems have none "
                         f"(question types: {', '.join(sorted(question_types))})")


def make_phases(defaults: dict, phases: list[dict] | None = None, where: str = "warm-start",
                question_types=None) -> list[Phase]:
    """The warm-start's phases: each of ``phases`` over the flat ``defaults``, or the defaults as one phase
    (``question_types``: see make_phase)."""
    if phases is not None and not phases:
        raise InputError(f"{where}: phases must not be empty (leave them out for one phase)")
    if not phases:
        return [make_phase(defaults, where, question_types)]
    return [make_phase({**defaults, **phase}, f"{where} phase {number}", question_types)
            for number, phase in enumerate(phases, 1)]


def flat_flag(key: str) -> str:
    """`nsr base`'s flag of a flat setting: --warmstart-KEY with dashes (learning_rate: --warmstart-lr)."""
    return "--warmstart-lr" if key == "learning_rate" else "--warmstart-" + key.replace("_", "-")


def warmstart_flags(warmstart: dict) -> list[str]:
    """`nsr base` arguments of a config's `base.warmstart` (the base rule's, and benchmarks'): the flat
    settings in PHASE_KEYS order (another key order must not re-run the base job), then one
    `--warmstart-phase` per phase."""
    args = [item for key in PHASE_KEYS if key in warmstart for item in (flat_flag(key), str(warmstart[key]))]
    for phase in warmstart.get("phases") or []:
        args += ["--warmstart-phase", ",".join(f"{k}={v}" for k, v in sorted(phase.items()))]
    return args


def study_warmstart_options(config: dict) -> dict | None:
    """The task options the embedded base warm-starts on: a synthchart study's own (same question mix,
    table sizes ...) without those that only score samples (switching them must not re-run the base)."""
    from nsr.rewards import SCORING_DEFAULTS

    if config["base"]["model"] != EMBEDDED or config["data"]["dataset"] != "synthchart":
        return None
    return {k: v for k, v in (config["data"].get("options") or {}).items() if k not in SCORING_DEFAULTS}


def parse_phase_flag(text: str) -> dict[str, str]:
    """`--warmstart-phase 'steps=600,learning_rate=3e-4,blind_spot=last_unseen'` as {key: text}."""
    settings = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise InputError(f"--warmstart-phase {text!r}: expected KEY=VALUE pairs separated by commas, got {part!r}")
        settings[key.strip()] = value.strip()
    return settings
