"""Shared fixtures: tiny stores in the real format, an isolated MLflow store, quiet threads."""
from __future__ import annotations

import copy
import http.server
import os
import shutil
import subprocess
import threading
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.data.prepared import Prepared, Split, window_starts
from pipeline.data.store import write_store

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)  # tests are small; more threads only contend on the 2-core CI machine


@pytest.fixture(autouse=True)
def _own_checksums_file(tmp_path, monkeypatch):
    """Downloads record first-seen checksums; tests' local servers must not land in the committed file."""
    monkeypatch.setenv("SVQ_CHECKSUMS", str(tmp_path / "checksums.json"))


@pytest.fixture(scope="session")
def params() -> dict:
    """The project's params.yaml, as read (not validated, to keep fixtures cheap)."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def tiny_params(params) -> dict:
    """params.yaml shrunk to a 3-experiment catalogue on t2m, tiny widths and one epoch."""
    p = copy.deepcopy(params)
    # the global seeds only (the catalogue gives these three their own 3): tests set them
    p["experiments"] = {k: {f: v for f, v in p["experiments"][k].items() if f != "seeds"}
                        for k in ("t2m_simvp", "t2m_svq_frozen", "t2m_svq")}
    p["profiles"]["sample"]["train"].update(epochs=1, max_steps_per_epoch=2, max_eval_batches=1)
    return p


def make_prepared(n_frames=(40, 20, 20), T_in=2, T_out=2, shape=(1, 16, 16), seed=0,
                  scaling="zscore", dtype=np.float32) -> Prepared:
    rng = np.random.default_rng(seed)
    splits = {}
    for name, n in zip(("train", "val", "test"), n_frames):
        t = np.arange(n)[:, None, None, None]
        frames = (280 + 10 * np.sin(t / 3.0) + rng.normal(0, 1, (n, *shape))).astype(dtype)
        splits[name] = Split(frames=frames, starts=window_starts(n, T_in, T_out))
    kw = {} if scaling == "zscore" else {"offset": [0.0] * shape[0], "scale": [255.0] * shape[0]}
    return Prepared(splits=splits, channels=[f"c{i}" for i in range(shape[0])], T_in=T_in, T_out=T_out,
                    step=1, scaling=scaling, metric_space="physical" if scaling == "zscore" else "model",
                    attrs={"made_by": "tests"}, **kw)


@pytest.fixture
def tiny_store(tmp_path) -> Path:
    return write_store(make_prepared(), tmp_path / "tiny.zarr")


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("SVQ_TRACKING_URI", uri)
    monkeypatch.setenv("SVQ_ARTIFACT_ROOT", (tmp_path / "mlartifacts").as_uri())
    return uri


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(directory: Path):
    """A local HTTP server (127.0.0.1 only) over ``directory``; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def copy_checkout(repo: Path) -> tuple[Path, dict[str, str]]:
    """This checkout's files (committed and not, no ignored ones) as a fresh one-commit repository
    at ``repo``, and the environment to run its commands in (this checkout's venv)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, repo / f)
    env = dict(os.environ, VIRTUAL_ENV=str(ROOT / ".venv"), GIT_AUTHOR_NAME="t", GIT_COMMITTER_NAME="t",
               GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_EMAIL="t@example.invalid")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    return repo, env
