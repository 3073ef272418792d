"""The tiny study through profiles/slurm on a real single-node SLURM cluster.

tests/cluster/slurm_local.sh installs slurm-wlm + munge from Debian packages when it can (root,
apt-get), starts munged/slurmctld/slurmd and stops them by PID afterwards. Where that is not
possible the test is skipped with the script's reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "cluster" / "slurm_local.sh"
TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    start = subprocess.run(["bash", str(SCRIPT), "start", str(state)], capture_output=True, text=True, timeout=300)
    if start.returncode == 3:
        pytest.skip(start.stderr.strip())
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield Path("/etc/slurm/slurm.conf")
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], capture_output=True, timeout=60)


@pytest.mark.slow
def test_tiny_study_on_slurm(slurm_cluster, tmp_path):
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["methods"] = {m: config["methods"][m] for m in ("base", "nsr", "w-reinforce")}
    config["data"].pop("extra_test_sets")  # covered by test_workflow; here fewer jobs, same rules
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "SLURM_CONF": str(slurm_cluster),
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(REPO / "profiles" / "slurm"),
         "--directory", str(tmp_path), "--configfile", str(config_path),
         # tiny jobs take seconds: the first status check after 1 s (the profile's 5 s is for real jobs)
         "--slurm-init-seconds-before-status-checks", "1"],
        capture_output=True, text=True, timeout=900, env=env, cwd=REPO,
    )
    wall = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    print(f"tiny study on SLURM: {wall:.0f} s")
    # Every job went through sbatch (the plugin deletes the SLURM logs of successful jobs).
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    jobs = 2 + 1 + 2 + 3 + 3 + 3 + 6  # subsets, base, trainings, samples, passk, passk_seeds, 5 figures + the base card
    assert len(set(submitted)) == jobs, output[-3000:]
    results = tmp_path / "results"
    for method in config["methods"]:
        report = json.loads((results / "pass_at_k" / method / "seed1.json").read_text())
        assert report["n"] == config["sampling"]["num_samples"]
        samples = pd.read_parquet(results / "samples" / method / "seed1.parquet")
        assert len(samples) == config["sampling"]["num_samples"] * config["data"]["test_size"]
    assert (results / "comparison_pass_at_k.png").stat().st_size > 10_000
    assert (results / "training_curves.png").stat().st_size > 10_000
    assert (results / "answer_forms.png").stat().st_size > 10_000
