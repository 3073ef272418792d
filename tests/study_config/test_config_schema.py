"""nsr.study_config.schema: the schema rejects unknown keys in every object; method entries
take exactly the keys a method may override."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from nsr.study_config import load_schema, schema_errors

REPO = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())


def test_schema_rejects_unknown_keys_in_every_object():
    """additionalProperties: false on every object of the schema (a new object must not forget it)."""
    def objects(node, path="schema"):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                yield path, node
            for key, value in node.items():
                yield from objects(value, f"{path}.{key}")

    found = list(objects(load_schema(REPO)))
    assert len(found) >= 10
    for path, node in found:
        assert node.get("additionalProperties") is False, path
    # method entries accept the train keys a method may override, not seeds
    config = copy.deepcopy(TINY)
    for key in load_schema(REPO)["properties"]["train"]["properties"]:
        if key != "seeds":
            config["methods"]["nsr"][key] = config["train"].get(key, 1)
    assert not [e for e in schema_errors(config, load_schema(REPO)) if "unknown key" in e]


def test_schema_lists_the_registered_group_filters():
    """The schema's enum of train.group_filter is nsr.trainer.group_filter's registry (one source for the names)."""
    from nsr.trainer.group_filter import GROUP_FILTERS

    settings = load_schema(REPO)["properties"]["train"]["properties"]
    assert settings["group_filter"]["enum"] == list(GROUP_FILTERS)
