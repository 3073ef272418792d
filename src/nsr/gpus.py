"""`nsr gpus`: give a local job its own GPUs (Snakemake counts GPUs but assigns no ids).

`snakemake --resources gpu=N` bounds how many GPUs concurrent jobs use; this command picks
*which* ones: it takes an exclusive ``flock`` on one lock file per GPU id, runs the job with
``CUDA_VISIBLE_DEVICES`` set to the ids it holds, and the kernel drops the locks when the job
exits, however it exits (a killed job never leaves a GPU reserved).

The GPU pool is ``NSR_GPU_IDS`` (comma list, e.g. to fake a node in tests), else the
``CUDA_VISIBLE_DEVICES`` this process was given, else ``nvidia-smi``'s indices. Under SLURM
(``SLURM_JOB_ID`` set) the scheduler has already bound the job's GPUs: the command runs as is.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from nsr.io import InputError

DEFAULT_LOCK_DIR = Path(".snakemake") / "gpu-locks"


def gpu_pool(env: dict | None = None) -> list[str]:
    env = os.environ if env is None else env
    for key in ("NSR_GPU_IDS", "CUDA_VISIBLE_DEVICES"):
        value = env.get(key)
        if value is not None:
            return [g.strip() for g in value.split(",") if g.strip()]
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True
        )
        if out.returncode == 0:
            return [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return []


@contextlib.contextmanager
def reserve_gpus(
    count: int, lock_dir: str | Path = DEFAULT_LOCK_DIR, pool: list[str] | None = None,
    timeout: float | None = None, poll_seconds: float = 0.5,
) -> Iterator[list[str]]:
    """Hold ``count`` GPU ids from the pool exclusively; yields (gpu id, lock fd) pairs."""
    pool = gpu_pool() if pool is None else pool
    if count > len(pool):
        raise InputError(f"job asks for {count} GPU(s) but only {len(pool)} are visible ({pool})")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    held: list[tuple[str, int]] = []
    try:
        while True:
            for gpu in pool:
                if len(held) == count:
                    break
                fd = os.open(lock_dir / f"gpu-{gpu}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held.append((gpu, fd))
                except BlockingIOError:
                    os.close(fd)
            if len(held) == count:
                break
            # Not enough free GPUs right now: release what we hold so two jobs never deadlock.
            for _, fd in held:
                os.close(fd)
            held.clear()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"no {count} free GPU(s) among {pool} within {timeout} s")
            time.sleep(poll_seconds)
        yield held
    finally:
        for _, fd in held:
            os.close(fd)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, required=True, help="GPUs for this job (0 = run as is)")
    parser.add_argument("--lock-dir", default=str(DEFAULT_LOCK_DIR))
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command to run")


def run(args: argparse.Namespace) -> None:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise InputError("nsr gpus: no command given after --")
    if args.count == 0 or "SLURM_JOB_ID" in os.environ:
        sys.exit(subprocess.call(command))
    with reserve_gpus(args.count, args.lock_dir) as held:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(gpu for gpu, _ in held)}
        print(f"nsr gpus: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}", file=sys.stderr, flush=True)
        # The job inherits the locks: the GPUs stay reserved until the job itself is gone.
        sys.exit(subprocess.call(command, env=env, pass_fds=[fd for _, fd in held]))
