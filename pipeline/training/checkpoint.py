"""Per-epoch resumable training state, so a killed run continues where it stopped.

After every epoch ``fit_one`` writes ``resume-seed<N>.pt`` atomically: model, optimiser and
scheduler states, every RNG the epoch loop draws from (Python, NumPy, torch, the loader's shuffle
generator, the noise generator), the early-stopping counters, the best state so far and the
MLflow run id. A rerun with the same configuration, seed and store loads it and continues in the
same MLflow run; on CPU the result is bit-identical to an uninterrupted run. The fingerprint keeps
a checkpoint from being resumed under other settings or data, and the training stage deletes the
whole scratch folder once a run completes, so a finished run is never resumed by accident.

The resume file ends with a SHA-256 of everything before it, appended before the file is renamed
into place (one file, so no kill can separate checkpoint and digest). A file whose digest does not
match (flipped bytes: torch.load reads them without complaint) or that has none is not resumed: the
seed trains from scratch after a one-line warning.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import random
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.core.outputs import atomic, write_text_atomic

log = logging.getLogger(__name__)

# Tests only: SIGKILL this process at the Nth training step (counted over the whole process), so a
# kill -9 in the middle of an epoch is reproducible without timing races.
KILL_AT_STEP_ENV = "SVQ_TEST_KILL_AT_STEP"
_steps_taken = 0

FORMAT = 1
SEAL = b"svq-sha256:"  # then the 32-byte digest of the bytes before it: a resume file's last bytes


def fingerprint(cfg, seed: int, store: Path) -> str:
    """What a checkpoint must match to be resumed: the run's settings, its seed and its store
    (the store's metadata carries the split sizes and train statistics, so new data differs)."""
    h = hashlib.sha256(json.dumps({"format": FORMAT, "config": cfg.to_dict(), "seed": seed},
                                  sort_keys=True, default=str).encode())
    for meta in sorted(Path(store).rglob("zarr.json")):
        h.update(meta.relative_to(store).as_posix().encode())
        h.update(meta.read_bytes())
    return h.hexdigest()


@dataclass
class Progress:
    """The epoch loop's own state besides model and optimiser."""

    best: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_times: list[float] = field(default_factory=list)
    stopped: bool = False  # early stopping fired: no epoch left to run
    run_id: str | None = None

    @property
    def epochs_done(self) -> int:
        return len(self.history)


RESUME_DIR = ".resume"  # inside a run's output folder; removed when the run completes


class Checkpoint:
    """One seed's resume file, and its record once the seed has finished."""

    def __init__(self, path: Path, fingerprint: str):
        self.path = Path(path)
        self.fingerprint = fingerprint

    @classmethod
    def for_seed(cls, out_dir: Path, cfg, seed: int, store: Path) -> "Checkpoint":
        return cls(Path(out_dir) / RESUME_DIR / f"resume-seed{seed}.pt", fingerprint(cfg, seed, store))

    @property
    def done_path(self) -> Path:
        return self.path.with_name(self.path.name.replace("resume-", "done-").replace(".pt", ".json"))

    @property
    def done_windows_path(self) -> Path:
        return self.done_path.with_suffix(".npz")

    def finish(self, result: dict[str, Any], windows: dict[str, np.ndarray]) -> None:
        """The seed is complete (artifacts written): record its result and its per-window test errors (arrays, so
        beside the JSON), drop the training state. The JSON goes last: it says the seed is done."""
        with atomic(self.done_windows_path, suffix=".npz") as tmp:
            np.savez(tmp, **windows)
        write_text_atomic(self.done_path, json.dumps({"fingerprint": self.fingerprint, "result": result}))
        self.path.unlink(missing_ok=True)

    def load(self, model, opt, sched, loader_gen: torch.Generator, dataset) -> Progress | None:
        """Restore everything into the given objects and return the loop state, or None when there
        is nothing to resume (no file, or one written for other settings/data: removed)."""
        if not self.path.exists():
            return None
        try:
            state = read_state(self.path)
        except Exception as exc:  # noqa: BLE001 - a foreign or damaged file: train from scratch
            log.warning("%s: %s; training from scratch", self.path, " ".join(str(exc).split()))
            state = None
        if not isinstance(state, dict) or state.get("fingerprint") != self.fingerprint:
            if state is not None:
                log.warning("%s: written for other settings or data; training from scratch", self.path)
            self.path.unlink(missing_ok=True)
            return None
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        _set_rng(state["rng"], loader_gen, dataset)
        return Progress(**state["progress"])

    def save(self, progress: Progress, model, opt, sched, loader_gen: torch.Generator, dataset) -> None:
        state = {
            "fingerprint": self.fingerprint,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "rng": _get_rng(loader_gen, dataset),
            "progress": progress.__dict__,
        }
        write_state(self.path, state)


def write_state(path: Path, state: dict[str, Any]) -> None:
    """``state`` saved with its digest; a kill mid-write leaves the previous file whole."""
    with atomic(path, fsync=True) as tmp:
        torch.save(state, tmp)
        _seal(tmp)


def read_state(path: Path) -> dict[str, Any]:
    """A resume file's state once its digest matches; ValueError if it has none or another."""
    data = Path(path).read_bytes()
    body, seal, digest = data[:-32 - len(SEAL)], data[-32 - len(SEAL):-32], data[-32:]
    if seal != SEAL:
        raise ValueError("no checksum (not written by this version, or cut)")
    if hashlib.sha256(body).digest() != digest:
        raise ValueError("checksum mismatch: the checkpoint is corrupt")
    return torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)


def _seal(path: Path) -> None:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(16 * 2**20):
            h.update(block)
    with open(path, "ab") as f:
        f.write(SEAL + h.digest())


def finished_seed(out_dir: Path, cfg, seed: int, store: Path) -> dict[str, Any] | None:
    """The result of a seed that completed before the run was killed (with its ``windows``), if its settings
    still match."""
    ck = Checkpoint.for_seed(out_dir, cfg, seed, store)
    try:
        done = json.loads(ck.done_path.read_text())
        if done.get("fingerprint") != ck.fingerprint:
            return None
        with np.load(ck.done_windows_path, allow_pickle=False) as data:
            return done["result"] | {"windows": {k: data[k] for k in data.files}}
    except (OSError, ValueError):
        return None


def clear(out_dir: Path) -> None:
    shutil.rmtree(Path(out_dir) / RESUME_DIR, ignore_errors=True)


def training_step_hook() -> None:
    """Called once per training step; a no-op unless a test asked for a kill -9."""
    global _steps_taken
    _steps_taken += 1
    at = os.environ.get(KILL_AT_STEP_ENV)
    if at and _steps_taken == int(at):
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------------------------
def _get_rng(loader_gen: torch.Generator, dataset) -> dict[str, Any]:
    np_state = np.random.get_state()
    rng = {
        "python": random.getstate(),
        # weights_only loading takes tensors, not ndarrays
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader_gen.get_state(),
        "dataset": None,
    }
    gen = getattr(dataset, "_generator", None)  # NoisyInputs' main-process noise stream
    if isinstance(gen, torch.Generator):
        rng["dataset"] = gen.get_state()
    return rng


def _set_rng(rng: dict[str, Any], loader_gen: torch.Generator, dataset) -> None:
    random.setstate(_tuples(rng["python"]))
    name, keys, *rest = rng["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    loader_gen.set_state(rng["loader"])
    if rng["dataset"] is not None and hasattr(dataset, "_rng"):
        dataset._rng().set_state(rng["dataset"])


def _tuples(x):
    """random.setstate wants the nested tuples torch.save may have turned into lists."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x
