"""The study config, checked before any job: `nsr check-config` and workflow/rules/common.smk.

Passes, one line per mistake, each naming the key path:
1. the JSON schema (workflow/schemas/config.schema.yaml, the single source of truth for keys,
   types and ranges): jsonschema's errors rephrased, an unknown key with the likely one
   (`methods.w-reinforce.lamda_psr: unknown key (did you mean lambda_psr?)`);
2. what a schema cannot say: the dataset is a task or an existing parquet file, task options
   are known to the task and valid, sizes fit their source, the base model is a folder or a hub
   id (so is a method's `model`), accelerate configs exist, `extra_args` parse with `nsr train`'s
   own parser, `trl` names GRPOConfig fields the project does not set, with values of their types
   (read from TRL's source, nothing imported), and no key is silently ignored (training keys on an
   untrained method);
3. `nsr check-config` only (imports TRL: seconds): each method's `trl` built into GRPOConfig.

    yaml_file.py      load_yaml: syntax errors and repeated keys named by file, line and column
    schema.py         schema_errors: jsonschema's errors, one line each
    train_command.py  method_settings, train_arguments (the train rule's `nsr train` flags), the
                      extra_args check and the GRPOConfig build of `trl` (trl_build_errors)
    checks.py         semantic_errors, config_errors (both passes), report
    cli.py            `nsr check-config`

Light on purpose (stdlib, yaml, jsonschema; pyarrow only for a parquet dataset): the workflow
imports it at DAG-build time.
"""

from nsr.study_config.checks import config_errors, report, semantic_errors
from nsr.study_config.schema import WORKFLOW_DIR, load_schema, schema_errors
from nsr.study_config.train_command import method_settings, train_arguments, trl_build_errors
from nsr.study_config.yaml_file import load_yaml

__all__ = ["WORKFLOW_DIR", "config_errors", "load_schema", "load_yaml", "report", "schema_errors",
           "method_settings", "semantic_errors", "train_arguments", "trl_build_errors"]
