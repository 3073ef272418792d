# nsr: the decomposed-RLVR study (Zhu et al. 2025) as one DAG.
#   subset -> base -> train (method x seed) -> sample -> passk -> plots
# Default target: the comparison figure, its tables and the training-dynamics figure.
# Nothing heavy is imported here: `snakemake -n` of a paper-scale preset takes about a second.

import os


# A --configfile given on the command line replaces the embedded default (it is not merged
# into it), so a preset's `methods` list is exactly the methods that run.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


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
        comparison_inputs(),
    default_target: True


include: "workflow/rules/data.smk"
include: "workflow/rules/base.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plot.smk"
