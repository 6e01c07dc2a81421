"""The template process that Lambda containers are forked from.

A container started as a fresh interpreter spends most of its start-up importing numpy,
pydantic, boto3, Powertools and the domain before its handler module loads. The zygote
imports them once; each container is then a ``fork`` of it and loads only its handler. That is
what Lambda SnapStart does for Python (an execution environment restored from a snapshot taken
after the common initialisation), and it keeps the per-function parts of a cold start (the
handler module's own import, the first call's clients and bank) where Lambda has them.

Only the parent emulator talks to the zygote, over a Unix socket: each request carries the
function's spec, the parent's current environment and working directory, and one end of a fresh
socket pair (``SCM_RIGHTS``), which becomes the container's line protocol. The zygote answers
with the container's pid. It stays single-threaded (fork is only safe so), lets the kernel reap
its children, and exits when the parent closes the control socket.

Fork is used on Linux only; elsewhere (or with ``IRTCAT_LOCAL_FORK=0``) containers start as
fresh interpreters, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from typing import Any

from . import lifetime

# what every handler imports; preloading a module that reads the environment at import time
# would freeze the zygote's values into every container, so those stay out (the X-Ray SDK)
PRELOAD = (
    "numpy",
    "pydantic",
    "boto3",
    "botocore.client",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.event_handler",
    "irtcat.domain.steps",
    "irtcat.adapters.aws",
    "irtcat.adapters.wiring",
    "irtcat.emulator.inprocess",
)
# no BLAS worker threads: fork copies only the forking thread, so the zygote must have no
# others (and a handler's matrices are small)
_SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_HEADER = struct.Struct("!I")


def fork_enabled() -> bool:
    """Containers fork from the zygote on Linux unless ``IRTCAT_LOCAL_FORK=0``."""
    setting = os.environ.get("IRTCAT_LOCAL_FORK", "").strip().lower()
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting in ("0", "false", "no", "off"):
        return False
    if setting:
        raise ValueError(f"IRTCAT_LOCAL_FORK={setting!r}: expected 1 (fork containers from the zygote) "
                         "or 0 (start each as a fresh interpreter)")
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


class ZygoteDied(RuntimeError):
    """The zygote process is gone or did not start."""


class Zygote:
    """The parent's handle on the zygote process: ``fork(spec)`` starts a container."""

    def __init__(self, start_timeout_s: float = 60.0) -> None:
        control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {**os.environ, **_SINGLE_THREADED}
        self.process = lifetime.start(
            [sys.executable, "-m", "irtcat.emulator.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.control = control
        self._lock = threading.Lock()
        control.settimeout(start_timeout_s)
        try:
            ready = _recv_exactly(control, 1)
        except (OSError, ZygoteDied) as exc:
            self.close()
            raise ZygoteDied(f"the container zygote did not start: {exc}") from None
        if ready != b"R":
            self.close()
            raise ZygoteDied("the container zygote failed to preload its modules")
        control.settimeout(None)

    def fork(self, spec: dict[str, Any]) -> tuple[int, socket.socket]:
        """A new container for ``spec``: its pid and the parent's end of its protocol socket."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        request = json.dumps({"spec": spec, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
        try:
            with self._lock:
                socket.send_fds(self.control, [_HEADER.pack(len(request)) + request], [theirs.fileno()])
                (pid,) = _HEADER.unpack(_recv_exactly(self.control, _HEADER.size))
        except OSError as exc:
            ours.close()
            raise ZygoteDied(f"the container zygote is gone: {exc}") from None
        finally:
            theirs.close()
        return pid, ours

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.control.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


_ZYGOTE: Zygote | None = None
_ZYGOTE_FAILED: str | None = None
_ZYGOTE_LOCK = threading.Lock()


def zygote() -> Zygote:
    """The process-wide zygote, started on first use (and again if it died) and stopped at
    exit. If it cannot start, every later call fails at once: containers then start as fresh
    interpreters for the rest of the process, with one warning."""
    global _ZYGOTE, _ZYGOTE_FAILED
    with _ZYGOTE_LOCK:
        if _ZYGOTE_FAILED is not None:
            raise ZygoteDied(_ZYGOTE_FAILED)
        if _ZYGOTE is None or _ZYGOTE.process.poll() is not None:
            try:
                _ZYGOTE = Zygote()
            except ZygoteDied as exc:
                _ZYGOTE_FAILED = str(exc)
                print(f"[irtcat] {exc}; containers start as fresh interpreters", file=sys.stderr)
                raise
            atexit.register(_ZYGOTE.close)
        return _ZYGOTE


def prestart() -> None:
    """Start the zygote in the background (the stack's start-up overlaps its imports)."""
    def start() -> None:
        with contextlib.suppress(ZygoteDied):
            zygote()

    if fork_enabled():
        threading.Thread(target=start, name="zygote", daemon=True).start()


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ZygoteDied("connection closed")
        data += chunk
    return data


def _serve_forever(control: socket.socket) -> None:
    from .function import FunctionSpec
    from .inprocess import serve

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the containers
    while True:
        try:
            header, fds, _, _ = socket.recv_fds(control, _HEADER.size, 1)
        except OSError:
            return
        if not header:
            return  # the parent closed the control socket
        if len(header) < _HEADER.size:
            header += _recv_exactly(control, _HEADER.size - len(header))
        (size,) = _HEADER.unpack(header)
        request = json.loads(_recv_exactly(control, size))
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                control.close()
                lifetime.die_with_parent()  # the zygote is single-threaded: safe here
                lifetime.watch_parent()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.environ.clear()
                os.environ.update(request["env"])
                os.environ.update(_SINGLE_THREADED)
                with contextlib.suppress(OSError):
                    os.chdir(request["cwd"])
                with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
                    comm.write(request["spec"]["logical_id"][:15])  # what top and ps -o comm show
                channel = socket.socket(fileno=fds[0])
                serve(FunctionSpec(**request["spec"]), channel.makefile("r", encoding="utf-8"),
                      channel.makefile("w", encoding="utf-8"))
            except BaseException:  # a container must never return into the zygote
                status = 1
            finally:
                os._exit(status)
        os.close(fds[0])
        control.sendall(_HEADER.pack(pid))


def main(control_fd: int) -> None:
    control = socket.socket(fileno=control_fd)
    try:
        for module in PRELOAD:
            importlib.import_module(module)
    except BaseException:  # the parent falls back to fresh interpreters
        control.sendall(b"E")
        raise
    control.sendall(b"R")
    _serve_forever(control)


if __name__ == "__main__":
    main(int(sys.argv[1]))
