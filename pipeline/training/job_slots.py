"""Several trainings at once on one machine (``dvc queue start -j N``): each takes its own slot.

DVC's queue workers inherit one environment, so they cannot be told apart up front. With
``SVQ_JOBS=N`` (the same N as ``-j``) a train stage claims the first free slot k in 0..N-1 by an
exclusive lock on ``.dvc/tmp/svq-slots/slot-k.lock`` at the repository root, held until the
process exits (a killed stage frees it too). Slot k then gets

* ``cpu_count // N`` torch threads (and ``OMP_NUM_THREADS`` for the loader workers), so N
  trainings do not oversubscribe the cores;
* on a machine with GPUs, its own ``train.devices`` GPUs (slot k: GPUs k*d .. k*d+d-1, modulo the
  number of GPUs) through ``CUDA_VISIBLE_DEVICES``, set before CUDA starts.

Without ``SVQ_JOBS`` nothing changes. Under torchrun the launching stage claimed the slot already.
"""
from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import ConfigError

ENV = "SVQ_JOBS"


@dataclass
class Slot:
    index: int
    jobs: int
    threads: int
    gpus: list[int]
    _handle: object = None

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None


def jobs_from_env() -> int | None:
    raw = os.environ.get(ENV)
    if raw in (None, ""):
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{ENV}: expected the number of parallel jobs (a positive integer), got {raw!r}")
    return int(raw)


def gpus_for(slot: int, per_slot: int, n_gpus: int) -> list[int]:
    if n_gpus == 0:
        return []
    return [(slot * per_slot + i) % n_gpus for i in range(per_slot)]


def claim(jobs: int, lock_dir: Path, *, gpus_per_slot: int = 1, n_gpus: int = 0,
          cpus: int | None = None, poll_s: float = 1.0) -> Slot:
    """Take the first free slot of ``jobs`` (waiting while all are held)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    cpus = cpus or len(os.sched_getaffinity(0))
    while True:
        for k in range(jobs):
            handle = open(lock_dir / f"slot-{k}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return Slot(k, jobs, max(1, cpus // jobs), gpus_for(k, gpus_per_slot, n_gpus), handle)
        time.sleep(poll_s)


def apply(slot: Slot) -> None:
    """Limit this process (and the processes it starts) to the slot's share of the machine."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(slot.threads)
    torch.set_num_threads(slot.threads)
    if slot.gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in slot.gpus)


def claim_from_env(gpus_per_slot: int = 1) -> Slot | None:
    """The stage's entry: claim and apply a slot when ``SVQ_JOBS`` asks for it."""
    from pipeline.core.paths import repo_root
    from pipeline.training.distributed import under_launcher

    jobs = jobs_from_env()
    if jobs is None or under_launcher():
        return None
    import torch

    slot = claim(jobs, repo_root() / ".dvc" / "tmp" / "svq-slots", gpus_per_slot=gpus_per_slot,
                 n_gpus=torch.cuda.device_count())
    apply(slot)
    print(f"{ENV}={jobs}: slot {slot.index}, {slot.threads} threads"
          + (f", GPUs {slot.gpus}" if slot.gpus else ""), flush=True)
    return slot
