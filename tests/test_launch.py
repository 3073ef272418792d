"""The accelerate launch line the train rule builds from a job's gpu / nodes resources."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from nsr.io import InputError
from nsr.launch import accelerate_command

TRAIN = ["-m", "nsr", "train", "--mode", "nsr", "--output-dir", "out dir"]


def test_single_node_uses_one_process_per_gpu_and_one_on_cpu():
    assert accelerate_command("c.yaml", 0, 1, TRAIN) == [
        "accelerate", "launch", "--config_file", "c.yaml", "--num_processes", "1", *TRAIN]
    assert accelerate_command("c.yaml", 4, 1, TRAIN)[5] == "4"


def test_multi_node_runs_one_launcher_per_node_with_its_rank(tmp_path):
    command = accelerate_command("z3.yaml", 8, 2, TRAIN, main_host="gpu01", port=29555)
    assert command[:4] == ["srun", "--overlap", "--nodes=2", "--ntasks-per-node=1"]
    assert command[4:6] == ["bash", "-c"]
    # Expand the per-node line as srun's shell would on node 1 and check what accelerate gets.
    echo = command[6].replace("accelerate launch", "printf '%s\\n'", 1)
    out = subprocess.run(["bash", "-c", echo], env={**os.environ, "SLURM_NODEID": "1"},
                         capture_output=True, text=True, check=True).stdout.splitlines()
    flags = dict(zip(out[::2], out[1::2]))
    assert flags["--num_processes"] == "16"  # accelerate counts processes over all machines
    assert flags["--num_machines"] == "2" and flags["--machine_rank"] == "1"
    assert flags["--main_process_ip"] == "gpu01" and flags["--main_process_port"] == "29555"
    assert out[-len(TRAIN):] == TRAIN  # arguments survive quoting ("out dir" stays one argument)


def test_multi_node_needs_a_main_host_and_sane_counts():
    with pytest.raises(InputError, match="main host"):
        accelerate_command("z3.yaml", 8, 2, TRAIN)
    with pytest.raises(InputError, match="nodes >= 1"):
        accelerate_command("z3.yaml", 8, 0, TRAIN)


def test_cli_multi_node_outside_slurm_is_a_clear_error(capsys):
    from nsr.cli import main

    env = {k: v for k, v in os.environ.items() if k != "SLURM_JOB_NODELIST"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "environ", env)
        with pytest.raises(SystemExit):
            main(["launch", "--config-file", "z3.yaml", "--gpus", "8", "--nodes", "2", "--", *TRAIN])
    assert "SLURM_JOB_NODELIST" in capsys.readouterr().err


def test_one_plain_process_runs_without_the_launcher(tmp_path):
    from nsr.launch import direct_command

    plain = tmp_path / "single.yaml"
    plain.write_text("distributed_type: 'NO'\nnum_processes: 1\nmixed_precision: bf16\n")
    command, env = direct_command(str(plain), 1, 1, TRAIN)
    assert command[1:] == TRAIN and env == {"ACCELERATE_MIXED_PRECISION": "bf16"}
    zero3 = tmp_path / "z3.yaml"
    zero3.write_text("distributed_type: DEEPSPEED\nnum_processes: 1\ndeepspeed_config: {zero_stage: 3}\n")
    assert direct_command(str(zero3), 1, 1, TRAIN) is None  # DeepSpeed needs the launcher's setup
    assert direct_command(str(plain), 2, 1, TRAIN) is None  # two GPUs: two processes
    assert direct_command(str(plain), 0, 2, TRAIN) is None  # two machines


def test_cli_direct_launch_runs_the_program_with_the_launch_environment(tmp_path):
    plain = tmp_path / "single.yaml"
    plain.write_text("distributed_type: 'NO'\nnum_processes: 1\nmixed_precision: 'no'\n")
    script = tmp_path / "show.py"
    script.write_text("import os, sys; print(os.environ['ACCELERATE_MIXED_PRECISION'], sys.argv[1:])\n")
    out = subprocess.run(["nsr", "launch", "--config-file", str(plain), "--", str(script), "a b"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "no ['a b']"
    assert "no launcher needed" in out.stderr
