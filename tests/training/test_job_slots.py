"""Parallel experiments (`dvc queue start -j N` with SVQ_JOBS=N): one slot per job, each with its
share of the CPU threads or its own GPUs."""
import os
import subprocess
import sys

import pytest
import torch

from pipeline.core.errors import ConfigError
from pipeline.training import job_slots


def test_slots_are_exclusive_and_freed(tmp_path):
    a = job_slots.claim(2, tmp_path, cpus=8)
    b = job_slots.claim(2, tmp_path, cpus=8)
    assert (a.index, b.index) == (0, 1) and a.threads == b.threads == 4
    # a third job waits for a free slot; another process sees slot 0 held until it is released
    code = ("import sys; from pathlib import Path; from pipeline.training import job_slots; "
            "s = job_slots.claim(2, Path(sys.argv[1]), cpus=8, poll_s=0.05); print(s.index)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=3)
    a.release()
    out, _ = proc.communicate(timeout=60)
    assert out.strip() == "0"
    b.release()


def test_gpus_per_slot():
    assert job_slots.gpus_for(1, 1, 4) == [1]
    assert job_slots.gpus_for(1, 2, 4) == [2, 3]
    assert job_slots.gpus_for(5, 1, 4) == [1]  # more jobs than GPUs: they share, round robin
    assert job_slots.gpus_for(0, 1, 0) == []


def test_apply_sets_the_thread_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    slot = job_slots.claim(1, tmp_path, cpus=3)
    try:
        job_slots.apply(slot)
        assert torch.get_num_threads() == 3 and os.environ["OMP_NUM_THREADS"] == "3"
        assert "CUDA_VISIBLE_DEVICES" not in os.environ or slot.gpus
    finally:
        torch.set_num_threads(before)
        slot.release()


def test_bad_env_value(monkeypatch):
    monkeypatch.setenv("SVQ_JOBS", "two")
    with pytest.raises(ConfigError, match="SVQ_JOBS: expected the number of parallel jobs"):
        job_slots.jobs_from_env()
