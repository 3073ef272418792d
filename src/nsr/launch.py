"""`nsr launch`: `accelerate launch` with its process layout taken from the job's resources.

One node: ``accelerate launch --config_file C --num_processes max(1, gpus) <args>``; when that is
one process of a plain config (distributed_type NO, no DeepSpeed / FSDP section), the job runs
``python <args>`` directly with the environment accelerate launch would set (mixed precision,
CPU use): the same training, without a launcher process that imports torch only to start one
child (about 5 CPU seconds of every embedded train job).
Several nodes (a SLURM allocation with ``--nodes N``): one ``accelerate launch`` per node via
``srun --ntasks-per-node 1``, each with ``--num_machines N --machine_rank $SLURM_NODEID``,
``--num_processes N x gpus`` (accelerate counts processes over all machines) and the first
host of the allocation as the rendezvous address.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from nsr.io import InputError

DEFAULT_PORT = 29500


def first_host(nodelist: str) -> str:
    """The first host of a SLURM nodelist, via scontrol (it expands ranges like gpu[01-04])."""
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def accelerate_command(config_file: str, gpus_per_node: int, nodes: int, args: list[str],
                       main_host: str | None = None, port: int = DEFAULT_PORT) -> list[str]:
    """The command to run (on every node when nodes > 1; the machine rank is read from SLURM_NODEID there)."""
    if nodes < 1 or gpus_per_node < 0:
        raise InputError(f"nsr launch: need nodes >= 1 and gpus >= 0, got nodes={nodes} gpus={gpus_per_node}")
    launch = ["accelerate", "launch", "--config_file", config_file,
              "--num_processes", str(max(1, gpus_per_node) * nodes)]
    if nodes == 1:
        return [*launch, *args]
    if main_host is None:
        raise InputError("nsr launch: a multi-node launch needs the main host (run inside a SLURM allocation)")
    launch += ["--num_machines", str(nodes), "--main_process_ip", main_host, "--main_process_port", str(port)]
    # The rank differs per node, so it is expanded by the shell of each srun task.
    per_node = shlex.join([*launch, "--machine_rank"]) + ' "$SLURM_NODEID" ' + shlex.join(args)
    return ["srun", "--overlap", f"--nodes={nodes}", "--ntasks-per-node=1", "bash", "-c", per_node]


def direct_command(config_file: str, gpus_per_node: int, nodes: int, args: list[str]) -> tuple[list[str], dict] | None:
    """(command, environment additions) running ``args`` without accelerate launch, or None when the
    layout needs the launcher (several processes or machines, DeepSpeed, FSDP, another distributed type)."""
    import yaml

    if nodes != 1 or gpus_per_node > 1:
        return None
    try:
        config = yaml.safe_load(Path(config_file).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None  # accelerate launch reports an unreadable config itself
    if (str(config.get("distributed_type", "NO")).upper() != "NO" or int(config.get("num_processes", 1)) != 1
            or config.get("deepspeed_config") or config.get("fsdp_config")):
        return None
    env = {"ACCELERATE_MIXED_PRECISION": str(config.get("mixed_precision", "no"))}
    if config.get("use_cpu"):
        env["ACCELERATE_USE_CPU"] = "true"
    return [sys.executable, *args], env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-file", required=True, help="accelerate config (config/accelerate/*.yaml)")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs per node (0: one CPU process)")
    parser.add_argument("--nodes", type=int, default=1, help="machines (needs a SLURM allocation when > 1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="rendezvous port on the main host")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- arguments of accelerate launch (e.g. -m nsr train ...)")


def run(args: argparse.Namespace) -> None:
    rest = args.args[1:] if args.args[:1] == ["--"] else args.args
    main_host = None
    if args.nodes > 1:
        nodelist = os.environ.get("SLURM_JOB_NODELIST")
        if not nodelist:
            raise InputError(f"nsr launch: --nodes {args.nodes} needs a SLURM allocation (SLURM_JOB_NODELIST unset)")
        main_host = first_host(nodelist)
    direct = direct_command(args.config_file, args.gpus, args.nodes, rest)
    if direct is not None:
        command, env = direct
        print("nsr launch (one process, no launcher needed): " + shlex.join(command), file=sys.stderr, flush=True)
        os.execve(sys.executable, command, {**os.environ, **env})
    command = accelerate_command(args.config_file, args.gpus, args.nodes, rest, main_host, args.port)
    print("nsr launch: " + shlex.join(command), file=sys.stderr, flush=True)
    sys.exit(subprocess.call(command))
