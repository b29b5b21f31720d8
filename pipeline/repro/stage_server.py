"""The warm stage server: one interpreter that has imported what the stages import, forking a
child per stage command, so that a stage skips the interpreter's start-up and its imports.

A sample-profile train stage spends ~4-6 CPU-s starting (interpreter, torch, MLflow, the pipeline,
``torch._dynamo``, matplotlib) before and around seconds of training; over a repro's ~120 stages
that is a quarter of ``make repro``'s CPU time (``bench/warm_start.py``: 15.8 s -> 9.9 s a stage).
``make repro`` (``pipeline.repro.progress``) starts this server and sets ``SVQ_STAGE_SERVER`` for DVC;
``stages/python`` then hands each stage command to ``pipeline/repro/stage_client.py``, which asks the
server to run it. DVC sees nothing different: same command, same output, same exit status.

    python -m pipeline.repro.stage_server --socket /tmp/x/socket     # what pipeline.repro.progress runs

A child runs the stage script as ``python <script> <args>`` would (``runpy``, ``__main__``,
``sys.argv``, ``sys.path[0]``, the client's working directory, environment and stdin/stdout/
stderr, Python's default signal handlers, exit functions run at the end). The server refuses a
command, and the client runs it cold instead, when what the child would inherit no longer matches
what a fresh interpreter would load:

* a source file of any module the server has imported changed since it imported it (an edit
  during a repro; the stage must see the new code, not a mix);
* a variable read when those modules were imported (``OMP_*``, ``PYTHON*``, ``TORCH*``, ...)
  differs between the server and the command.

It never serves where CUDA is available (a forked child cannot use CUDA its parent started) or once
an import has started a Python thread (a fork copies one thread; locks held by the others would
never be released; the native pools of OpenBLAS and jemalloc re-create theirs after a fork). A stage whose client dies (DVC killed) is stopped: SIGTERM, SIGKILL after a grace
period; a server whose parent dies stops its stages and exits; Linux's parent-death signal stops a
stage whose server is killed outright. A malformed request (:func:`parse_request`) is refused and
the file descriptors it brought are closed; the server serves on.
"""
from __future__ import annotations

import argparse
import atexit
import importlib
import io
import json
import os
import runpy
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipeline.core import cpu_kernels
from pipeline.core.paths import CHECKOUT as ROOT
from pipeline.repro.stage_client import ENV, MAX_MESSAGE, receive, send

# Imported lazily by the stages' code (inside functions), so not in the package's import closure.
LAZY_IMPORTS = ("torch._dynamo", "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.db.utils",
                "matplotlib.pyplot", "xarray", "zarr", "dask.array", "pandas", "sqlalchemy", "alembic")
# Read when the preloaded modules are imported (torch's allocator and thread pools, Python itself).
IMPORT_TIME_ENV = ("PYTHON", "ATEN_", "ONEDNN_", "DNNL_", "OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS", "THP_", "TORCH", "PYTORCH", "CUDA",
                   "NVIDIA", "LD_", "MALLOC_", "MPLBACKEND", "MPLCONFIGDIR")
KILL_GRACE_S = 10.0


def preload_modules(root: Path = ROOT) -> list[str]:
    """The package's modules every stage script may import, then the lazily imported libraries."""
    from pipeline.repro.code_digest import KINDS
    from pipeline.repro.imports import ImportGraph

    graph = ImportGraph(root)
    modules: set[str] = set()
    for kind in KINDS:
        for path in graph.closure(Path("stages") / f"{kind}.py"):
            if path.suffix == ".py" and path.parts[0] == "pipeline":
                modules.add(graph.module_of(root / path))
    return sorted(modules) + list(LAZY_IMPORTS)


def source_files() -> dict[str, tuple[int, int]]:
    """(mtime, size) of the source file of every imported module: what a fork would run."""
    out = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            try:
                st = os.stat(path)
            except OSError:
                continue
            out[path] = (st.st_mtime_ns, st.st_size)
    return out


def first_changed(snapshot: dict[str, tuple[int, int]]) -> str | None:
    """The first source file whose (mtime, size) moved since ``snapshot``; checked per request,
    so it stops at the first."""
    for path, stamp in snapshot.items():
        try:
            st = os.stat(path)
        except OSError:
            return path
        if (st.st_mtime_ns, st.st_size) != stamp:
            return path
    return None


def initial_environ() -> dict[str, str]:
    """The environment this process was started with, before any import changed it (Linux keeps
    it in /proc; elsewhere, the current one)."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return dict(os.environ)
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="surrogateescape"): v.decode(errors="surrogateescape") for k, v in pairs}


def import_time_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV)}


def cuda_available() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available())


def parse_request(data: bytes, flags: int = 0) -> tuple[dict | None, str | None]:
    """A request (what ``stage_client.run_warm`` sends) and None, or None and why it is refused: the
    server trusts its fields only once they have these types."""
    if flags & socket.MSG_TRUNC:
        return None, f"a request over {MAX_MESSAGE} bytes"
    if flags & socket.MSG_CTRUNC:
        return None, "a request with more than its stdin, stdout and stderr"
    try:
        request = json.loads(data)
    except (ValueError, RecursionError):
        return None, "a request that is not JSON"
    if not isinstance(request, dict):
        return None, f"a request that is a JSON {type(request).__name__}, not an object"
    if set(request) != {"argv", "cwd", "env"}:
        return None, f"a request with keys {sorted(request)}, expected ['argv', 'cwd', 'env']"
    argv, cwd, env = request["argv"], request["cwd"], request["env"]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return None, "a request whose argv is not a non-empty list of strings"
    if not isinstance(cwd, str) or not cwd:
        return None, "a request whose cwd is not a path"
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        return None, "a request whose env is not an object of strings"
    return request, None


@dataclass
class Stage:
    conn: socket.socket
    pid: int
    pidfd: int
    kill_at: float | None = None
    done: bool = False


class Server:
    def __init__(self, socket_path: str, modules: list[str] | None = None, log=sys.stderr):
        self.socket_path, self.log = socket_path, log
        self.parent = os.getppid()
        # the CPU kernels every stage command gets from stages/python, in place before any import uses torch
        start_env = cpu_kernels.portable(initial_environ())
        cpu_kernels.portable()
        self.failed_imports: dict[str, str] = {}
        with warnings.catch_warnings():  # import-time notices belong to the stages that print them
            warnings.simplefilter("ignore")
            warnings.showwarning = lambda *args, **kwargs: None  # also past filters an import adds
            for name in (preload_modules() if modules is None else modules):
                try:
                    importlib.import_module(name)
                except Exception as exc:  # noqa: BLE001 - a stage importing it will report it properly
                    self.failed_imports[name] = f"{type(exc).__name__}: {exc}"
        # What the imports themselves put in the environment (pipeline/__init__'s setdefault):
        # a fresh interpreter would do the same on top of the command's environment.
        self.import_env = {k: v for k, v in os.environ.items() if start_env.get(k) != v}
        self.env = import_time_env(start_env)
        self.sources = source_files()
        self.unusable = None
        if cuda_available():
            self.unusable = "CUDA is available (a forked stage could not use it)"
        elif threading.active_count() > 1:
            self.unusable = (f"{threading.active_count()} Python threads after the imports "
                             f"(a fork copies one; locks held by the others would never be released)")
        self.stages: dict[int, Stage] = {}   # by pidfd
        self.by_conn: dict[socket.socket, Stage] = {}
        self.sel = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.stopping = False

    # ------------------------------------------------------------------------ serving
    def refusal(self, request: dict) -> str | None:
        if self.unusable:
            return self.unusable
        changed = first_changed(self.sources)
        if changed:
            return f"{changed} changed since the server imported it"
        env = import_time_env(request["env"])
        for key in sorted(set(env) | set(self.env)):
            if env.get(key) != self.env.get(key):
                return f"{key}={env.get(key)!r} differs from the server's {self.env.get(key)!r}"
        return None

    def serve_forever(self) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(self.socket_path)
        self.listener.listen(16)
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._stop)
        print(f"stage server: ready on {self.socket_path} ({len(sys.modules)} modules)", file=self.log, flush=True)
        try:
            while not (self.stopping and not self.stages):
                if os.getppid() != self.parent and not self.stopping:
                    self._stop()  # whoever started the server is gone
                for key, _ in self.sel.select(timeout=1.0):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "request":
                        self._request(key.fileobj)
                    elif key.data == "client":
                        self._client(key.fileobj)
                    else:
                        self._reap(key.data)
                self._kill_overdue()
        finally:
            self.sel.close()
            self.listener.close()
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass

    def _stop(self, *_args) -> None:
        self.stopping = True
        if self.listener is not None:
            try:
                self.sel.unregister(self.listener)
            except (KeyError, ValueError):
                pass
        for stage in self.stages.values():
            self._terminate(stage)

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        self.sel.register(conn, selectors.EVENT_READ, "request")

    def _request(self, conn: socket.socket) -> None:
        self.sel.unregister(conn)
        try:
            data, fds, flags, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
        except OSError:
            conn.close()
            return
        request, reason = parse_request(data, flags)
        if reason is None and len(fds) != 3:
            reason = "a request without its stdin, stdout and stderr"
        if reason is None:
            reason = self.refusal(request)
        if reason:  # the fds it came with are closed here, or the client's pipes would stay open
            for fd in fds:
                os.close(fd)
            try:
                send(conn, {"status": "refused", "reason": reason})
            except OSError:
                pass
            conn.close()
            return
        pid = os.fork()
        if pid == 0:
            self._child(conn, fds, request)  # never returns
        for fd in fds:
            os.close(fd)
        stage = Stage(conn, pid, os.pidfd_open(pid))
        self.stages[stage.pidfd] = stage
        self.by_conn[conn] = stage
        self.sel.register(stage.pidfd, selectors.EVENT_READ, stage.pidfd)
        self.sel.register(conn, selectors.EVENT_READ, "client")
        try:
            send(conn, {"status": "started", "pid": pid})
        except OSError:
            self._terminate(stage)

    def _client(self, conn: socket.socket) -> None:
        stage = self.by_conn[conn]
        try:
            message = receive(conn)
        except (OSError, ValueError):
            message = None
        if message is None:  # the client died or was killed: so must its stage
            self.sel.unregister(conn)
            del self.by_conn[conn]
            conn.close()
            self._terminate(stage)
        elif isinstance(message, dict) and type(message.get("signal")) is int:  # anything else: ignored
            try:
                os.kill(stage.pid, message["signal"])
            except (OSError, ValueError, OverflowError):
                pass

    def _terminate(self, stage: Stage) -> None:
        if not stage.done and stage.kill_at is None:
            try:
                os.kill(stage.pid, signal.SIGTERM)
            except OSError:
                pass
            stage.kill_at = time.monotonic() + KILL_GRACE_S

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for stage in self.stages.values():
            if stage.kill_at is not None and now >= stage.kill_at and not stage.done:
                try:
                    os.kill(stage.pid, signal.SIGKILL)
                except OSError:
                    pass
                stage.kill_at = None

    def _reap(self, pidfd: int) -> None:
        stage = self.stages.pop(pidfd)
        self.sel.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(stage.pid, 0)
        stage.done = True
        if stage.conn in self.by_conn:
            del self.by_conn[stage.conn]
            self.sel.unregister(stage.conn)
            try:
                send(stage.conn, {"exit": os.waitstatus_to_exitcode(status)})
            except OSError:
                pass
            stage.conn.close()

    # ------------------------------------------------------------------------ the child
    def _child(self, conn: socket.socket, fds: list[int], request: dict) -> None:
        code = 1
        try:
            _die_with_parent()
            for s in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(s, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.sel.close()
            self.listener.close()
            conn.close()
            for stage in self.stages.values():
                os.close(stage.pidfd)
                stage.conn.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            os.chdir(request["cwd"])
            env = dict(request["env"])
            for key, value in self.import_env.items():
                env.setdefault(key, value)
            os.environ.clear()
            os.environ.update(env)
            _standard_streams()
            code = _run_script(request["argv"])
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:  # noqa: BLE001 - report as Python would, then exit
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)


def _run_script(argv: list[str]) -> int:
    """``python <argv>`` in this (forked) interpreter: the script as ``__main__``, then what the
    interpreter does at exit (non-daemon threads joined, atexit functions, streams flushed)."""
    script = argv[0]
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    import random

    random.seed()  # fresh entropy, as a new interpreter's (a fork copies the server's state)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    torch = sys.modules.get("torch")
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if torch is not None and threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))  # a fresh torch reads it when it starts its pool
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = _exit_code(exc)
    except KeyboardInterrupt:
        import traceback

        traceback.print_exc()
        code = 128 + signal.SIGINT
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()  # what the interpreter does before it exits
    except Exception:  # noqa: BLE001
        pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _standard_streams() -> None:
    """New sys.stdin/stdout/stderr on fds 0-2, buffered as a fresh interpreter's would be."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)))
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
                                  line_buffering=unbuffered or os.isatty(1), write_through=unbuffered)
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
                                  line_buffering=True, errors="backslashreplace", write_through=unbuffered)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def _die_with_parent() -> None:
    """Linux: SIGTERM to this child when the server dies, however it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextmanager
def serving(enabled: bool = True) -> Iterator[dict[str, str]]:
    """A server in a subprocess for the duration of the block; yields the environment that points
    stage commands at it (empty when ``enabled`` is false). Commands started before it is ready
    (its imports take seconds) run cold; none waits for it."""
    if not enabled:
        yield {}
        return
    folder = tempfile.mkdtemp(prefix="svq-stage-")  # mode 0700: only this user can connect
    path = os.path.join(folder, "socket")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.repro.stage_server", "--socket", path], cwd=ROOT)
    try:
        yield {ENV: path}
    finally:
        proc.terminate()  # stops the stages it still runs, then exits
        try:
            proc.wait(timeout=KILL_GRACE_S + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--socket", required=True, help="path of the Unix socket to listen on")
    ap.add_argument("--modules", help="comma-separated modules to import (default: what the stages import)")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    server = Server(args.socket, args.modules.split(",") if args.modules else None)
    for name, error in server.failed_imports.items():
        print(f"stage server: could not preload {name} ({error})", file=sys.stderr)
    if server.unusable:
        print(f"stage server: not serving: {server.unusable}; stages run cold", file=sys.stderr, flush=True)
        return
    print(f"stage server: imports took {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
