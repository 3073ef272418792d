# nsr: the decomposed-RLVR study (Zhu et al. 2025) as one DAG.
#   subset -> base -> train (method x seed) -> sample -> passk -> plots
# Default target: the comparison figure and its tables, the training-dynamics figure and the
# answer-forms figure (where the probability that training moves goes), and with a `base` method
# the coverage of the test problems binned by the base's success rate and the answer distributions
# of the fragile ones (where each method moved the base's mass).
# Nothing heavy is imported here: `snakemake -n` of a paper-scale preset takes about a second.

import os
import sys

# The workflow's own package (config checks in common.smk), also where Snakemake runs without it.
sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from snakemake.exceptions import WorkflowError

from nsr.io import InputError
from nsr.study_config import load_yaml

DEFAULT_CONFIG = os.path.join(workflow.basedir, "config", "config.yaml")

# A --configfile given on the command line replaces the embedded default (it is not merged
# into it), so a preset's `methods` list is exactly the methods that run.
if not workflow.overwrite_configfiles:
    try:  # a YAML error names file and line (Snakemake's own message does not)
        load_yaml(DEFAULT_CONFIG)
    except InputError as error:
        raise WorkflowError(str(error)) from None

    configfile: DEFAULT_CONFIG


include: "workflow/rules/common.smk"


wildcard_constraints:
    method=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",
    split="|".join(SPLITS),
    testset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


rule all:
    input:
        "results/comparison_pass_at_k.png",
        "results/comparison_pass_at_k.csv",
        "results/training_curves.png",
        "results/answer_forms.png",
        coverage_targets(),
        answer_distributions_targets(),
        base_card_targets(),
        comparison_inputs(),
    default_target: True


include: "workflow/rules/data.smk"
include: "workflow/rules/base.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plot.smk"
