"""nsr.study_config.yaml_file and `nsr check-config`: YAML errors name file, line and column."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from nsr.cli import main as cli_main
from nsr.io import InputError
from nsr.study_config import load_yaml

REPO = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())


def test_yaml_errors_name_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  dataset: synthchart\n  train_size: [1\n")
    with pytest.raises(InputError, match=rf"^{bad}:4:1: YAML syntax error: expected ',' or '\]', but got "
                                         r"'<stream end>' \(while parsing a flow sequence at line 3\)$"):
        load_yaml(bad)
    twice = tmp_path / "twice.yaml"
    twice.write_text("train: {seeds: [1]}\ndata: {seed: 1}\ntrain: {seeds: [2]}\n")
    with pytest.raises(InputError, match=rf"^{twice}:3:1: key 'train' is given twice$"):
        load_yaml(twice)
    # `nsr check-config` runs the same checks as the workflow, from the command line
    with pytest.raises(SystemExit) as stop:
        cli_main(["check-config", str(bad)])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == f"nsr check-config: error: {bad}:4:1: YAML syntax error: expected ',' " \
                                              "or ']', but got '<stream end>' (while parsing a flow sequence at line 3)"
    typo = tmp_path / "typo.yaml"
    config = copy.deepcopy(TINY)
    config["train"]["eval_evry"] = 1
    typo.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit):
        cli_main(["check-config", str(typo)])
    assert capsys.readouterr().err.splitlines() == [
        f"config {typo}: 1 mistake", "  train.eval_evry: unknown key (did you mean eval_every?)"]
    cli_main(["check-config", str(REPO / "tests" / "configs" / "tiny.yaml")])
    assert capsys.readouterr().out.strip().endswith("tiny.yaml: ok")
