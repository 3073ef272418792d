"""GPU assignment for local multi-GPU runs, on a faked pool of device ids."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from nsr.gpus import gpu_pool, reserve_gpus
from nsr.io import InputError


def test_pool_order_of_precedence():
    assert gpu_pool({"NSR_GPU_IDS": "4,5", "CUDA_VISIBLE_DEVICES": "0"}) == ["4", "5"]
    assert gpu_pool({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert gpu_pool({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_concurrent_reservations_get_disjoint_gpus(tmp_path):
    pool = ["0", "1", "2", "3"]
    with reserve_gpus(2, tmp_path, pool=pool) as first, reserve_gpus(2, tmp_path, pool=pool) as second:
        first, second = [g for g, _ in first], [g for g, _ in second]
        assert len(first) == len(second) == 2
        assert set(first).isdisjoint(second)
        with pytest.raises(TimeoutError):
            with reserve_gpus(1, tmp_path, pool=pool, timeout=0.2, poll_seconds=0.05):
                pass
    with reserve_gpus(4, tmp_path, pool=pool) as everything:  # all released again
        assert sorted(g for g, _ in everything) == pool


def test_more_gpus_than_visible_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="asks for 3 GPU"):
        with reserve_gpus(3, tmp_path, pool=["0", "1"]):
            pass


def _nsr_gpus(tmp_path, count, *command, env_extra=None):
    env = {**os.environ, "NSR_GPU_IDS": "0,1,2", **(env_extra or {})}
    env.pop("SLURM_JOB_ID", None)
    return subprocess.Popen(
        [sys.executable, "-m", "nsr", "gpus", "--count", str(count), "--lock-dir", str(tmp_path), "--", *command],
        env=env, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )


def test_command_sees_its_own_devices_and_a_killed_job_frees_them(tmp_path):
    show = "import os, time; print(os.environ['CUDA_VISIBLE_DEVICES'], flush=True); time.sleep(30)"
    holder = _nsr_gpus(tmp_path, 2, sys.executable, "-c", show)
    held = holder.stdout.readline().strip().split(",")
    assert len(held) == 2
    other = _nsr_gpus(tmp_path, 1, sys.executable, "-c", "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])")
    out, _ = other.communicate(timeout=60)
    assert out.strip() not in held and out.strip() in {"0", "1", "2"}
    # The job itself holds the locks too: killing only the wrapper keeps its GPUs reserved ...
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with pytest.raises(TimeoutError):
        with reserve_gpus(1, tmp_path, pool=held, timeout=0.3, poll_seconds=0.05):
            pass
    # ... and once the whole job is gone the kernel has dropped every lock.
    os.killpg(holder.pid, signal.SIGKILL)
    time.sleep(0.3)
    with reserve_gpus(2, tmp_path, pool=held, timeout=10, poll_seconds=0.05) as again:
        assert sorted(g for g, _ in again) == sorted(held)


def test_exit_code_is_propagated(tmp_path):
    proc = _nsr_gpus(tmp_path, 1, sys.executable, "-c", "raise SystemExit(3)")
    proc.communicate(timeout=60)
    assert proc.returncode == 3
