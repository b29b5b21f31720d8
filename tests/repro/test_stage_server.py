"""The warm stage server (pipeline/repro/stage_server.py) and its client, as DVC uses them: a stage
command run through ``sh stages/python`` behaves the same served or cold (output, exit status,
working directory, environment), stops when its client is stopped or killed, and runs cold when
the server is absent or its imports no longer match what a fresh interpreter would load."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "stages" / "python"

SCRIPT = """\
import os, sys, time
print("argv", sys.argv[1:], "cwd", os.getcwd(), "colour", os.environ.get("COLOUR"), "pid", os.getpid())
print("to stderr", file=sys.stderr)
if sys.argv[1] == "sleep":
    open(sys.argv[2], "w").write(str(os.getpid()))
    time.sleep(60)
if sys.argv[1] == "raise":
    raise ValueError("bad value")
sys.exit(int(sys.argv[1]))
"""


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path):
    """A server preloading a module of its own (fast: no torch), on a socket in tmp_path."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "preloaded.py").write_text("VALUE = 1\n")
    sock = tmp_path / "s.sock"
    env = dict(os.environ, PYTHONPATH=str(lib))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.repro.stage_server", "--socket", str(sock),
                             "--modules", "json,preloaded"], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(sock)
        yield {"socket": sock, "env": env, "lib": lib, "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not sock.exists()  # the server removes its socket when it stops


def _run(tmp_path, args, env, **kw):
    script = tmp_path / "stage.py"
    script.write_text(SCRIPT)
    return subprocess.Popen(["sh", str(WRAPPER), str(script), *args], cwd=tmp_path,
                            env=dict(env, COLOUR="blue"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def _pid(stdout: str) -> int:
    return int(stdout.split("pid ")[1].split()[0])


def test_a_served_command_behaves_as_a_cold_one(tmp_path, server):
    for args, rc in ((["3"], 3), (["0"], 0), (["raise"], 1)):
        warm = _run(tmp_path, args, dict(server["env"], SVQ_STAGE_SERVER=str(server["socket"])))
        w_out, w_err = warm.communicate(timeout=60)
        cold = _run(tmp_path, args, server["env"])
        c_out, c_err = cold.communicate(timeout=60)
        assert warm.returncode == cold.returncode == rc
        # the cold command is the process DVC started (exec all the way); the served one a fork
        assert _pid(c_out) == cold.pid and _pid(w_out) != warm.pid
        assert w_out.replace(str(_pid(w_out)), "PID") == c_out.replace(str(_pid(c_out)), "PID")
        assert f"cwd {tmp_path}" in w_out and "colour blue" in w_out
        assert w_err.splitlines()[0] == c_err.splitlines()[0] == "to stderr"
        if args == ["raise"]:
            assert "ValueError: bad value" in w_err and "ValueError: bad value" in c_err
            assert "stage server" not in w_err  # served: no note


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_the_stage_stops_with_its_client(tmp_path, server, how):
    pid_file = tmp_path / "stage.pid"
    client = _run(tmp_path, ["sleep", str(pid_file)], dict(server["env"], SVQ_STAGE_SERVER=str(server["socket"])))
    _wait_for(pid_file)
    stage = int(pid_file.read_text())
    assert stage != client.pid
    client.send_signal(how)  # SIGTERM is passed on; a killed client's closed socket stops the stage
    client.wait(timeout=30)
    assert client.returncode == -how
    end = time.monotonic() + 20
    while _alive(stage):
        assert time.monotonic() < end, f"stage {stage} still runs after its client got {how!r}"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_changed_module_or_import_time_variable_runs_cold(tmp_path, server):
    env = dict(server["env"], SVQ_STAGE_SERVER=str(server["socket"]))
    other = _run(tmp_path, ["5"], dict(env, OMP_NUM_THREADS="7" if os.environ.get("OMP_NUM_THREADS") != "7" else "8"))
    out, err = other.communicate(timeout=60)
    assert other.returncode == 5 and _pid(out) == other.pid
    assert "stage server: OMP_NUM_THREADS=" in err and "running the stage cold" in err
    (server["lib"] / "preloaded.py").write_text("VALUE = 2  # edited while the server runs\n")
    edited = _run(tmp_path, ["4"], env)
    out, err = edited.communicate(timeout=60)
    assert edited.returncode == 4 and _pid(out) == edited.pid
    assert "preloaded.py changed since the server imported it" in err


def test_without_a_server_the_command_runs_cold(tmp_path):
    proc = _run(tmp_path, ["6"], dict(os.environ, SVQ_STAGE_SERVER=str(tmp_path / "absent.sock")))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 6 and _pid(out) == proc.pid
    assert err == "to stderr\n"


def test_serving_starts_and_stops_a_server(tmp_path):
    from pipeline.repro.stage_server import serving

    with serving(False) as env:
        assert env == {}
    with serving() as env:
        sock = Path(env["SVQ_STAGE_SERVER"])
        assert sock.parent.stat().st_mode & 0o077 == 0  # only this user may connect
    assert not sock.parent.exists()


def test_make_repros_dvc_stages_are_served(tmp_path, monkeypatch):
    """The whole chain `make repro` uses: pipeline.repro.progress starts a server, DVC runs the stage
    command with SVQ_STAGE_SERVER set, stages/python hands it to the server. The stage waits for the
    socket first (the server's imports take seconds; a command arriving earlier would run cold)."""
    import io

    import yaml

    from pipeline.repro import progress

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "stage.py").write_text("import os, sys\nopen('out.txt', 'w').write(f'{os.getpid()} {os.getppid()}')\n")
    wait = 'while [ ! -S "$SVQ_STAGE_SERVER" ]; do sleep 0.1; done'
    cmd = f"{wait}; echo $$ > shell.pid; sh {WRAPPER} stage.py"
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": {"cmd": cmd, "outs": ["out.txt"]}}}))
    env = dict(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.invalid")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    monkeypatch.chdir(repo)
    out = io.StringIO()
    assert progress.run([], out=out, dvc=str(Path(sys.executable).with_name("dvc"))) == 0, out.getvalue()
    pid, parent = map(int, (repo / "out.txt").read_text().split())
    shell = int((repo / "shell.pid").read_text())
    # cold, the stage would be the shell's child (exec'd by stages/python); served, the server's
    assert parent != shell and pid != shell


def _connect(sock_path: Path):
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(str(sock_path))
    return sock


def _closed_by_the_server(read_end: int, timeout: float = 20.0) -> bool:
    """EOF on a pipe whose write end this process has closed: no other copy is left open."""
    import select

    ready, _, _ = select.select([read_end], [], [], timeout)
    return bool(ready) and os.read(read_end, 1) == b""


@pytest.mark.parametrize("payload", [
    b"[1, 2]",                                                     # JSON, but a list
    b"{not json",
    b'{"argv": "stage.py", "cwd": "/", "env": {}}',                # argv a string
    b'{"argv": ["stage.py"], "cwd": 3, "env": {}}',                # cwd a number
    b'{"argv": ["stage.py"], "cwd": "/", "env": {"A": 1}}',        # env value a number
    b'{"argv": ["stage.py"], "cwd": "/", "env": []}',
    b'{"argv": ["stage.py"], "cwd": "/"}',                         # a key missing
], ids=["list", "invalid", "argv-str", "cwd-int", "env-int", "env-list", "no-env"])
def test_a_malformed_request_is_refused_its_fds_closed_and_the_server_serves_on(tmp_path, server, payload):
    import socket

    from pipeline.repro.stage_client import receive

    r, w = os.pipe()
    try:
        sock = _connect(server["socket"])
        socket.send_fds(sock, [payload], [w, w, w])
        os.close(w)
        w = None
        reply = receive(sock)
        sock.close()
        assert reply["status"] == "refused" and reply["reason"].startswith("a request"), reply
        assert _closed_by_the_server(r), "the server kept the fds of a refused request open"
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
    assert server["proc"].poll() is None, "the server died on a malformed request"
    good = _run(tmp_path, ["3"], dict(server["env"], SVQ_STAGE_SERVER=str(server["socket"])))
    out, err = good.communicate(timeout=60)
    assert good.returncode == 3 and _pid(out) != good.pid and "stage server" not in err  # served


def test_a_request_over_the_size_limit_is_refused(tmp_path, server):
    import socket

    from pipeline.repro.stage_client import MAX_MESSAGE, receive

    r, w = os.pipe()
    sock = _connect(server["socket"])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MAX_MESSAGE)
    socket.send_fds(sock, [b" " * (MAX_MESSAGE + 1)], [w, w, w])
    os.close(w)
    try:
        reply = receive(sock)
        assert reply == {"status": "refused", "reason": f"a request over {MAX_MESSAGE} bytes"}
        assert _closed_by_the_server(r)
    finally:
        os.close(r)
        sock.close()
    assert server["proc"].poll() is None


def test_a_malformed_signal_message_is_ignored(tmp_path, server):
    """A running stage's client sends signals as {"signal": n}; anything else changes nothing."""
    import json
    import socket

    from pipeline.core.cpu_kernels import portable
    from pipeline.repro.stage_client import receive, send

    script = tmp_path / "stage.py"
    script.write_text(SCRIPT)
    pid_file = tmp_path / "stage.pid"
    with open(os.devnull, "r+b") as null:
        sock = _connect(server["socket"])
        send(sock, {"argv": [str(script), "sleep", str(pid_file)], "cwd": str(tmp_path),
                    "env": portable(dict(server["env"]))},  # as stages/python would send it
             [null.fileno()] * 3)
    assert receive(sock)["status"] == "started"
    _wait_for(pid_file)
    for bad in (b'{"signal": null}', b'{"signal": "15"}', b'{"signal": 1e300}', b'{"signal": 99999999999999999999}',
                b'[15]', b'"signal"'):
        sock.send(bad)
    time.sleep(0.5)
    assert server["proc"].poll() is None and _alive(int(pid_file.read_text()))
    sock.send(json.dumps({"signal": signal.SIGTERM}).encode())
    assert receive(sock) == {"exit": -signal.SIGTERM}
    sock.close()
    assert server["proc"].poll() is None
