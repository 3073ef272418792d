"""Where a policy comes from: a local model folder or a hub id, checked before anything is written.

``model_source_error`` is light (no transformers import): the config check of the workflow uses
it at DAG-build time. ``check_model`` also asks the hub (or, offline, its cache) for a hub id's
config, so `nsr train|sample|base` fail with one line before creating any output.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Iterator

from nsr.io import InputError

# "org/name" as the hub spells repository ids (letters, digits, - _ .).
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def model_source_error(name: str) -> str | None:
    """Why ``name`` is neither a model folder (save_pretrained's config.json) nor shaped like a hub
    id; None if fine."""
    path = Path(name).expanduser()
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            return f"{name}: not a model folder (no config.json)"
        try:
            fields = json.loads(config.read_text())
        except (OSError, ValueError) as exc:
            return f"{name}: config.json is not readable JSON ({first_line(exc)})"
        missing = [k for k in ("model_type", "architectures") if not (isinstance(fields, dict) and fields.get(k))]
        return f"{name}: config.json has no {' / '.join(missing)} (not saved by save_pretrained?)" if missing else None
    if path.exists():
        return f"{name}: not a folder"
    if HUB_ID.match(name) and not name.startswith((".", "~")):
        return None
    return f"{name}: no such model folder (a hub id looks like org/name)"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_model(name: str, flag: str = "--model") -> None:
    """InputError naming ``flag`` unless ``name`` is a model folder or a hub id the hub (or its
    cache, offline) can provide."""
    error = model_source_error(name)
    if error:
        raise InputError(f"{flag} {error}")
    if not Path(name).expanduser().is_dir():
        with loading(name, flag):
            from transformers import AutoConfig

            AutoConfig.from_pretrained(name)


@contextlib.contextmanager
def loading(name: str, flag: str = "--model") -> Iterator[None]:
    """Turn a failure to load ``name`` (missing or broken files, hub unreachable) into one InputError."""
    try:
        yield
    except InputError:
        raise
    except (OSError, ValueError) as exc:  # transformers / huggingface_hub raise these for unusable sources
        where = "local folder" if Path(name).expanduser().is_dir() else "hub id (offline or not on the hub?)"
        raise InputError(f"{flag} {name}: cannot load this {where}: {first_line(exc)}") from exc
