"""dvc.lock survives kill -9: DVC's YAML writer, as make repro runs it (pipeline.repro.lock_guard),
replaces the file whole, so every kill leaves the previous or the new lock, never a cut one."""
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT
from pipeline.repro import lock_guard

WRITER = """
import sys, yaml
from pipeline.repro import lock_guard
lock_guard.install()
from dvc.utils.serialize import dump_yaml
path = sys.argv[1]
versions = [yaml.safe_load(open(p)) for p in sys.argv[2:]]
print("ready", flush=True)
i = 0
while True:  # DVC's own writer, rewriting the lock as after every stage, until killed
    dump_yaml(path, versions[i % 2])
    i += 1
"""


def _lock(n_stages, tag):
    """A dvc.lock-sized document: n stages with deps and outs, as DVC writes them."""
    return {"schema": "2.0", "stages": {
        f"train_{tag}_{i}": {"cmd": f"sh stages/python stages/train.py e{i}",
                             "deps": [{"path": f"run_params/e{i}.yaml", "hash": "md5", "md5": f"{i:032x}", "size": 1500}],
                             "outs": [{"path": f"runs/e{i}/{f}", "hash": "md5", "md5": f"{i + 7:032x}", "size": 10}
                                      for f in ("result.json", "history.csv", "figures.npz", "windows.npz")]}
        for i in range(n_stages)}}


def test_a_kill_at_any_point_of_the_lock_write_leaves_a_whole_lock(tmp_path):
    versions = [_lock(93, "a"), _lock(120, "b")]  # ~7,000 lines together, as this project's lock
    files = []
    for k, v in enumerate(versions):
        files.append(tmp_path / f"v{k}.yaml")
        files[-1].write_text(yaml.safe_dump(v))
    lock = tmp_path / "dvc.lock"
    lock.write_text(yaml.safe_dump(versions[0]))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for kill in range(24):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(lock), *map(str, files)], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.013 * kill)  # a different point of a write each time
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert yaml.safe_load(lock.read_text()) in versions, f"kill {kill}: dvc.lock cut"
        lock_guard.clean_stale(tmp_path)  # the killed writer's temporary, if any
        assert not list(tmp_path.glob("*.lock-guard.tmp"))


def test_a_failed_write_keeps_the_previous_file_where_dvcs_own_writer_cuts_it(tmp_path):
    from dvc.utils.serialize import _common

    def dies_halfway(data, fd):
        fd.write("schema: '2.0'\nstages:\n")
        raise KeyboardInterrupt  # as a kill in the middle of the write

    original = _common._dump_data
    lock = tmp_path / "dvc.lock"
    lock.write_text("schema: '2.0'\nstages: {train_a: {cmd: x}}\n")
    with pytest.raises(KeyboardInterrupt):
        lock_guard.atomic_dump_data(lock, {}, dies_halfway)
    assert yaml.safe_load(lock.read_text())["stages"] == {"train_a": {"cmd": "x"}}
    assert not list(tmp_path.glob("*.lock-guard.tmp"))
    with pytest.raises(KeyboardInterrupt):  # the same with DVC's writer: the lock is cut
        original(lock, {}, dies_halfway)
    assert yaml.safe_load(lock.read_text())["stages"] is None


def test_make_repro_runs_dvc_through_the_guard(tmp_path, monkeypatch):
    from pipeline.repro import progress

    seen = []

    def fake_sequential(args, out, dvc, warm=True):
        seen.append(dvc)
        return 0

    monkeypatch.setattr(progress, "run_sequential", fake_sequential)
    assert progress.run([], out=open(os.devnull, "w")) == 0
    assert seen == [[sys.executable, "-m", "pipeline.repro.lock_guard"]]
    repo = tmp_path / "repo"  # and the guard runs DVC itself: a real repro writes a whole lock
    repo.mkdir()
    (repo / "dvc.yaml").write_text("stages:\n  s:\n    cmd: echo hi > out.txt\n    outs: [out.txt]\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"],
                [sys.executable, "-m", "pipeline.repro.lock_guard", "repro", "-q"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    assert "s" in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert not list(repo.glob("*.lock-guard.tmp"))
