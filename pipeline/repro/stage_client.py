"""The stage side of the warm stage server (``pipeline/repro/stage_server.py``): run one stage command
there, or here, cold, whenever it cannot be run there.

    python -S pipeline/repro/stage_client.py stages/train.py t2m_simvp     # what stages/python runs

when ``SVQ_STAGE_SERVER`` names the server's socket (``make repro`` sets it). The stage's stdin,
stdout and stderr go to the server with the request, so its output reaches DVC as a cold run's
would; its exit status comes back as this process's. A signal this process gets (DVC or a user
stopping the stage) is passed on to the stage, and if this process dies the server stops the stage.

Standard library only, and run with ``-S``: the point is to start in milliseconds. No server, or a
server that refuses (its code changed since it started; see the server), and the command runs
here exactly as ``stages/python`` would run it without a server.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys

ENV = "SVQ_STAGE_SERVER"
MAX_MESSAGE = 1 << 20          # one request: argv, cwd, environment
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def receive(sock: socket.socket) -> dict | None:
    """One message, None once the other side has closed."""
    data = sock.recv(MAX_MESSAGE)
    return json.loads(data) if data else None


def run_cold(argv: list[str]) -> None:
    """Replace this process by the stage in a fresh interpreter (with site, unlike this one)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *argv])


def run_warm(path: str, argv: list[str]) -> int | None:
    """The stage's exit status from the server; None if the server cannot or will not run it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(path)
        send(sock, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}, [0, 1, 2])
        reply = receive(sock)
    except OSError:
        return None  # no server (not started, gone, still warming up): run cold
    if not reply or reply.get("status") != "started":
        if reply and reply.get("reason"):
            print(f"stage server: {reply['reason']}; running the stage cold", file=sys.stderr, flush=True)
        return None

    def forward(signum, _frame):
        try:
            send(sock, {"signal": signum})
        except OSError:
            pass

    for s in FORWARDED:
        signal.signal(s, forward)
    while True:
        try:
            reply = receive(sock)
        except InterruptedError:
            continue
        except OSError:
            reply = None
        if reply is None:
            print("stage server: the server went away before the stage ended", file=sys.stderr, flush=True)
            return 1
        if "exit" in reply:
            code = int(reply["exit"])
            if code < 0:  # the stage died of a signal: so does this process, as a cold run would
                signal.signal(-code, signal.SIG_DFL)
                os.kill(os.getpid(), -code)
                return 128 - code
            return code


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: stage_client.py <script.py> [arguments]")
    path = os.environ.get(ENV)
    code = run_warm(path, argv) if path else None
    if code is None:
        run_cold(argv)
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
