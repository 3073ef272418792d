"""`nsr check-config`: the workflow's config checks from the command line (also for a
--configfile, whose YAML syntax errors Snakemake reports without file or line)."""

from __future__ import annotations

import argparse
import sys

from nsr.study_config.checks import config_errors, report
from nsr.study_config.schema import WORKFLOW_DIR
from nsr.study_config.train_command import method_settings, trl_build_errors
from nsr.study_config.yaml_file import load_yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configfile", nargs="+", help="study config YAML file(s); later files update earlier ones")
    parser.add_argument("--workflow-dir", default=str(WORKFLOW_DIR),
                        help="folder with the Snakefile (schema, accelerate configs); default: this checkout")


def merge(base: dict, update: dict) -> dict:
    """Nested dicts updated key by key, as Snakemake merges several --configfile."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run(args: argparse.Namespace) -> None:
    config: dict = {}
    for path in args.configfile:
        config = merge(config, load_yaml(path))
    errors = config_errors(config, args.workflow_dir)
    if not errors:  # the GRPOConfig each training job builds (imports TRL, so not in the dry run)
        errors = [error for method, entry in config["methods"].items() if entry["objective"] != "none"
                  for error in trl_build_errors(f"methods.{method}.trl" if "trl" in entry else "train.trl",
                                                method_settings(config, method))]
        errors = list(dict.fromkeys(errors))
    source = " + ".join(args.configfile)
    if errors:  # one line per mistake (a single InputError would be printed as one line)
        print(report(errors, source), file=sys.stderr)
        sys.exit(2)
    print(f"config {source}: ok")
