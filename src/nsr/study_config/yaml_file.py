"""A config YAML file as a dict: syntax errors and repeated keys named by file, line and column."""

from __future__ import annotations

from pathlib import Path

import yaml

from nsr.io import InputError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML keeps the last silently)."""


def _mapping_without_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise InputError(f"{mark.name}:{mark.line + 1}:{mark.column + 1}: key {key!r} is given twice")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_yaml(path: str | Path) -> dict:
    """A YAML config file as a dict; InputError naming file, line and column on any syntax error."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as stream:  # the stream's name is the file name in error marks
            data = yaml.load(stream, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise InputError(f"{path}: cannot read the config file ({exc.strerror})") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = f" ({exc.context} at line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
        raise InputError(f"{path}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {exc.problem}{context}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: YAML syntax error: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config is a YAML mapping of keys (data, base, train, ...)")
    return data
