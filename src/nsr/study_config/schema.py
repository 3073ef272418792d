"""The JSON schema pass: jsonschema's errors as one line per mistake, naming the key path."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

WORKFLOW_DIR = Path(__file__).resolve().parents[3]  # the repository (editable install / checkout)
SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"
_FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")  # YAML 1.1 reads 1e-4 as a string


def _key(path: Iterable[Any], *more: Any) -> str:
    """The key path as written in messages: base.warmstart.phases[1].learning_rate."""
    text = ""
    for part in (*path, *more):
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "config"


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def text_number_hint(value: Any) -> str:
    """A hint for a number YAML 1.1 read as text (1e-4 without a decimal point); empty otherwise."""
    if isinstance(value, str) and _FLOAT_TEXT.match(value):
        return " (YAML reads this as text: write it with a decimal point, e.g. 1.0e-4)"
    return ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _describe(error) -> list[str]:
    """jsonschema's error as one line per mistake, naming the key path."""
    where, kind, value, instance = _key(error.absolute_path), error.validator, error.validator_value, error.instance
    if kind == "additionalProperties" and value is False:
        allowed = list(error.schema.get("properties", {}))
        lines = []
        for key in (k for k in instance if k not in allowed):
            if key == "seeds" and where.startswith("methods."):
                lines.append(f"{_key(error.absolute_path, key)}: not a per-method key (train.seeds applies to every method)")
            else:
                lines.append(f"{_key(error.absolute_path, key)}: unknown key{suggest(key, allowed)}")
        return lines
    if kind == "required":
        # A missing key that an unknown key resembles is one mistake, reported as the typo.
        unknown = [k for k in instance if k not in error.schema.get("properties", {})]
        return [f"{_key(error.absolute_path, key)}: missing (required)" for key in value
                if key not in instance and not difflib.get_close_matches(key, unknown, n=1, cutoff=0.6)]
    if error.parent is None and list(error.relative_schema_path)[:1] == ["propertyNames"]:
        return [f"{where}: name {instance!r} is not allowed (letters, digits, _ . -, starting with a letter or digit)"]
    if kind == "type":
        hint = text_number_hint(instance)
        return [f"{where}: must be {value if isinstance(value, str) else ' or '.join(value)}, got {_short(instance)}{hint}"]
    if kind == "enum":
        return [f"{where}: {_short(instance)} is not one of {', '.join(map(str, value))}{suggest(instance, value)}"]
    if kind in _BOUNDS:
        return [f"{where}: must be {_BOUNDS[kind]} {value}, got {_short(instance)}"]
    if kind == "not":
        return [f"{where}: {_short(instance)} is not allowed ({error.schema.get('description', 'see the schema')})"]
    if kind in ("minItems", "minProperties", "minLength"):
        return [f"{where}: must not be empty"]
    if kind == "uniqueItems":
        return [f"{where}: has repeated values {_short(instance)}"]
    return [f"{where}: {error.message}"]


def load_schema(workflow_dir: str | Path = WORKFLOW_DIR) -> dict:
    return yaml.safe_load((Path(workflow_dir) / SCHEMA).read_text())


def schema_errors(config: dict, schema: dict) -> list[str]:
    from jsonschema import Draft202012Validator, validators

    # 2.0 is an integer to JSON Schema, but `nsr` flags parse integers with int(): keep floats out.
    integers_only = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    validator_class = validators.extend(Draft202012Validator, type_checker=integers_only)
    errors = sorted(validator_class(schema).iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    return unique(line for error in errors for line in _describe(error))


def unique(lines: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(lines))
