"""The one atomic writer: a target is replaced whole or not at all, and no scratch is left behind."""
import os

import numpy as np
import pytest

from pipeline.core.outputs import atomic, clean_stale, write_or_check, write_text_atomic


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_file_is_replaced_only_when_complete(tmp_path):
    target = tmp_path / "sub" / "result.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and leftovers(target.parent) == []
    write_text_atomic(target, "new", fsync=True)
    assert target.read_text() == "new" and leftovers(target.parent) == []


def test_a_folder_and_a_suffixed_file(tmp_path):
    store = tmp_path / "out.zarr"
    for content in ("first", "second"):
        with atomic(store) as tmp:
            tmp.mkdir()
            (tmp / "data").write_text(content)
    assert (store / "data").read_text() == "second" and leftovers(tmp_path) == []
    with atomic(tmp_path / "figures.npz", suffix=".npz") as tmp:
        np.savez_compressed(tmp, a=np.arange(3))  # would append .npz to a name without it
    assert np.load(tmp_path / "figures.npz")["a"].tolist() == [0, 1, 2] and leftovers(tmp_path) == []


def test_stale_scratch_of_a_killed_run_is_cleaned(tmp_path):
    target = tmp_path / "runs" / "x"
    target.parent.mkdir()
    (target.parent / ".x.tmp-dead").mkdir()
    (target.parent / ".x.tmp-beef.npz").write_text("")
    keep = target.parent / ".x.tmp-resume"
    keep.mkdir()
    clean_stale(target, keep=keep)
    assert leftovers(target.parent) == [".x.tmp-resume"]


def test_write_or_check(tmp_path, capsys):
    out = tmp_path / "dvc.yaml"
    assert write_or_check(out, "a\n", check=True, command="make it", summary="") == 1
    assert capsys.readouterr().err == f"{out} is stale: run `make it`\n" and not out.exists()
    assert write_or_check(out, "a\n", check=False, command="make it", summary="1 stage") == 0
    assert capsys.readouterr().out == f"wrote {out}: 1 stage\n"
    assert write_or_check(out, "a\n", check=True, command="make it", summary="") == 0


def test_a_folder_that_cannot_be_put_in_place_brings_the_old_one_back(tmp_path, monkeypatch):
    import os

    from pipeline.core import outputs

    final = tmp_path / "raw"
    final.mkdir()
    (final / "kept").write_text("old")
    real = os.replace

    def fail_on_new(src, dst):
        if "new" in str(src):
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", fail_on_new)
    new = tmp_path / "new"
    new.mkdir()
    with pytest.raises(OSError):
        outputs.replace_dir(new, final)
    assert (final / "kept").read_text() == "old" and leftovers(tmp_path) == []


def test_the_scratch_a_killed_stage_leaves_is_ignored_by_git():
    """A report, params or data stage killed mid-swap leaves `.<name>.tmp-<hex>` beside its output:
    git must not offer it for a commit (the next run of the stage removes it)."""
    import subprocess

    from conftest import ROOT
    from pipeline.core.outputs import scratch

    for final in ("reports/README.md", "reports/tables", "run_params", "code_digests/train.md5",
                  "data/processed/t2m.zarr", "runs/t2m_svq"):
        leftover = scratch(ROOT / final).relative_to(ROOT).as_posix()
        res = subprocess.run(["git", "check-ignore", "-q", "--no-index", leftover], cwd=ROOT)
        assert res.returncode == 0, f"{leftover} is not ignored by git"


HOLDER = """\
import sys
from pipeline.core.outputs import exclusive
with exclusive(sys.argv[1], "experiment t2m_simvp"):
    print("held", flush=True)
    sys.stdin.read()
"""


def hold_lock(path):
    """A process holding ``exclusive(path)`` until its stdin is closed (or it is killed)."""
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_second_holder_of_a_lock_is_refused_naming_the_holder(tmp_path):
    import signal

    from pipeline.core.errors import ProjectError
    from pipeline.core.outputs import exclusive, lock_path

    out = tmp_path / "runs" / "t2m_simvp"
    holder = hold_lock(out)
    try:
        with pytest.raises(ProjectError) as err:
            with exclusive(out, "experiment t2m_simvp"):
                raise AssertionError("a second holder got the lock")
        assert str(err.value) == (f"experiment t2m_simvp is already running (pid {holder.pid}, holding "
                                  f"{lock_path(out)}); wait for it to end, or stop it")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0 and not lock_path(out).exists()  # a clean exit removes it
    with exclusive(out, "experiment t2m_simvp"):
        assert lock_path(out).read_text() == f"{os.getpid()}\n"

    killed = hold_lock(out)  # a holder killed outright leaves the file, not the lock
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert lock_path(out).exists()
    with exclusive(out, "experiment t2m_simvp"):
        pass


def test_a_lock_removed_between_open_and_flock_is_not_taken(tmp_path, monkeypatch):
    """The holder removes the file as it releases; a process that opened the old file just before
    must lock the file now at the path, or two processes would both hold "the" lock."""
    import fcntl

    from pipeline.core import outputs

    out = tmp_path / "run"
    lock = outputs.lock_path(out)
    flocked = []
    real_flock = fcntl.flock

    def flock_after_a_release(handle, op):  # the first time, the file is replaced just before the flock
        if not flocked:
            lock.unlink()
            lock.write_text("")
        flocked.append(os.fstat(handle.fileno()).st_ino)
        return real_flock(handle, op)

    monkeypatch.setattr(outputs.fcntl, "flock", flock_after_a_release)
    with outputs.exclusive(out, "run"):
        held = os.stat(lock).st_ino
    assert len(flocked) == 2 and flocked[1] == held != flocked[0]


def test_a_lock_left_by_a_killed_stage_is_ignored_by_git():
    import subprocess

    from conftest import ROOT
    from pipeline.core.outputs import lock_path

    leftover = lock_path(ROOT / "runs" / "t2m_svq").relative_to(ROOT).as_posix()
    assert subprocess.run(["git", "check-ignore", "-q", "--no-index", leftover], cwd=ROOT).returncode == 0
