"""Lambda containers as processes: each function's handler runs in processes of its own,
forked from the zygote (:mod:`.zygote`) on Linux, fresh interpreters elsewhere.

Why processes and not threads: a Lambda container is a process that serves one event at a
time, and handler code relies on that. Powertools keeps per-invocation state in class
attributes shared by every instance in a process (the event resolvers' ``current_event``, the
metric set of ``Metrics``), so two handlers of *different* functions running on two threads of
one process read each other's request: a student's poll authorised with another student's
claims, a start-session call parsing a poll's body. Processes also give the handlers the
machine's other cores, which the emulator (one process, one GIL) cannot use.

A pool per function starts one warm container with the stack, and scales out, like Lambda,
when every container is busy (up to ``IRTCAT_LOCAL_CONTAINERS`` per function); a new container
pays its cold start before it serves. A handler that overruns its timeout gets its container
killed, as Lambda does.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from . import lifetime
from .function import FunctionSpec, InvokeResult
from .zygote import ZygoteDied, fork_enabled, zygote

DEFAULT_MAX_CONTAINERS = 3
# the parent waits this long past the function's timeout before it kills the container
_KILL_GRACE_S = 2.0


def max_containers() -> int:
    """Containers per function (``IRTCAT_LOCAL_CONTAINERS``, default 3)."""
    raw = os.environ.get("IRTCAT_LOCAL_CONTAINERS", "")
    return max(1, int(raw)) if raw.strip() else DEFAULT_MAX_CONTAINERS


class ContainerDied(RuntimeError):
    """The container process ended or was killed (timeout) while serving an event."""

    def __init__(self, message: str, error_type: str = "Runtime.ExitError") -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass
class Container:
    """One container process, spoken to over a line protocol: its stdin and stdout when it is a
    fresh interpreter, a socket when it is forked from the zygote (see :mod:`.zygote`)."""

    pid: int
    requests: IO[str]
    replies: queue.Queue[str | None]
    process: subprocess.Popen[str] | None = None  # a fresh interpreter (not forked)
    channel: socket.socket | None = None  # a forked container's protocol socket

    @classmethod
    def start(cls, spec: FunctionSpec, init_timeout_s: float = 60.0) -> Container:
        container = cls._fork(spec) if fork_enabled() else None
        if container is None:
            container = cls._spawn(spec)
        try:
            line = container.replies.get(timeout=init_timeout_s)
        except queue.Empty:
            container.kill()
            raise ContainerDied(f"{spec.logical_id}: container did not start in {init_timeout_s:.0f} s") from None
        if line is None:
            raise ContainerDied(f"{spec.logical_id}: container exited during init")
        status, detail = json.loads(line)
        if status != "ready":
            container.kill()
            raise ContainerDied(f"{spec.logical_id}: init failed: {detail}")
        return container

    @classmethod
    def _spawn(cls, spec: FunctionSpec) -> Container:
        # a fresh interpreter, not a fork of this process: the emulator's threads make that
        # unsafe, and multiprocessing's spawn would re-import the caller's __main__
        proc = lifetime.start(
            [sys.executable, "-m", "irtcat.emulator.inprocess", json.dumps(asdict(spec))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert proc.stdin is not None and proc.stdout is not None
        return cls(proc.pid, proc.stdin, _pumped(proc.stdout, spec), process=proc)

    @classmethod
    def _fork(cls, spec: FunctionSpec) -> Container | None:
        try:
            pid, channel = zygote().fork(asdict(spec))
        except ZygoteDied:
            return None  # a fresh interpreter instead
        replies = _pumped(channel.makefile("r", encoding="utf-8"), spec)
        return cls(pid, channel.makefile("w", encoding="utf-8"), replies, channel=channel)

    def invoke(self, event: Any, timeout_s: float) -> InvokeResult:
        try:
            self.requests.write(json.dumps(event) + "\n")
            self.requests.flush()
            line = self.replies.get(timeout=timeout_s + _KILL_GRACE_S)
        except queue.Empty:
            self.kill()
            raise ContainerDied(f"Task timed out after {timeout_s:.2f} seconds", "TimeoutError") from None
        except OSError as exc:
            self.kill()
            raise ContainerDied(f"container exited: {type(exc).__name__}") from None
        if line is None:
            self.kill()
            raise ContainerDied(f"container exited with status {self._status()}")
        payload, error, logs, duration = json.loads(line)
        return InvokeResult(payload, error, logs, duration)

    def _status(self) -> str:
        return str(self.process.poll()) if self.process is not None else "unknown (forked)"

    def kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(Exception):
                self.process.kill()
                self.process.wait(timeout=5)
        else:  # the zygote's child: the kernel reaps it once the signal has landed
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _exists(self.pid):
                time.sleep(0.01)
        self._close()

    def stop(self) -> None:
        """End the container as Lambda retires one: close its input; it exits on its own."""
        with contextlib.suppress(Exception):
            self.requests.close()
        if self.process is not None:
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def _close(self) -> None:
        if self.channel is not None:
            with contextlib.suppress(OSError):
                self.channel.shutdown(socket.SHUT_RDWR)
            self.channel.close()


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pumped(stream: IO[str], spec: FunctionSpec) -> queue.Queue[str | None]:
    """A queue of the container's reply lines, fed by a thread; None when it exits."""
    replies: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                replies.put(line)
        replies.put(None)

    threading.Thread(target=pump, name=f"lambda-{spec.logical_id}", daemon=True).start()
    return replies


RECENT_LOGS = 5000


@dataclass
class ContainerPool:
    """The containers of one function: warm ones are reused, busy ones make the pool scale out."""

    spec: FunctionSpec
    limit: int = field(default_factory=max_containers)
    _idle: list[Container] = field(default_factory=list)
    _alive: int = 0  # started or starting
    _init_error: str | None = None
    _closed: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition)
    cold_starts: int = 0
    _started: list[Container] = field(default_factory=list)  # every container started, for kill_one
    # the newest invocations' log output, as CloudWatch Logs would hold it (for inspection)
    recent_logs: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_LOGS))

    def warm(self, wait: bool = False) -> None:
        """Start one container unless one is up or starting: in the background, or (``wait``) in
        this thread."""
        with self._cond:
            if self._alive != 0 or self._closed:
                return
            self._alive += 1
        if wait:
            self._start_one()
        else:
            threading.Thread(target=self._start_one, name=f"start-{self.spec.logical_id}", daemon=True).start()

    def _spawn_locked(self) -> None:
        self._alive += 1
        threading.Thread(target=self._start_one, name=f"start-{self.spec.logical_id}", daemon=True).start()

    def _start_one(self) -> None:
        try:
            container = Container.start(self.spec)
        except ContainerDied as exc:
            with self._cond:
                self._alive -= 1
                self._init_error = str(exc)
                self._cond.notify_all()
            return
        with self._cond:
            self.cold_starts += 1
            if self._closed:
                self._alive -= 1
                container.stop()
                return
            self._init_error = None
            self._idle.append(container)
            self._started.append(container)
            self._cond.notify()

    def invoke(self, event: Any) -> InvokeResult:
        started = time.perf_counter()
        with self._cond:
            if not self._idle and self._alive < self.limit:
                self._spawn_locked()
            while not self._idle:
                if self._closed:
                    raise ContainerDied("the local stack is shutting down")
                if self._alive == 0 and self._init_error:
                    return _error_result("Runtime.InitError", self._init_error, started)
                if self._alive == 0:
                    self._spawn_locked()
                self._cond.wait(timeout=1.0)
            container = self._idle.pop()
        try:
            result = container.invoke(event, self.spec.timeout_s)
        except ContainerDied as exc:
            with self._cond:
                self._alive -= 1
                self._cond.notify()
            return _error_result(exc.error_type, str(exc), started)
        with self._cond:
            self._idle.append(container)
            self._cond.notify()
        if result.logs:
            self.recent_logs.append(result.logs)
        return result

    def kill_one(self, pick: Callable[[list[int]], int]) -> int | None:
        """SIGKILL one of the pool's live containers, idle or busy (``pick`` chooses among their
        pids), as a crashed Lambda sandbox dies: the chaos benchmark's fault. Its pid, or None."""
        with self._cond:
            alive = [c for c in self._started if _exists(c.pid)]
            self._started = alive
        if not alive:
            return None
        pid = pick([c.pid for c in alive])
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        return pid

    def kill_all(self) -> None:
        """SIGKILL every container and take no more invocations: the pool of a stack whose
        process dies (the chaos run's restart)."""
        with self._cond:
            self._closed = True
            started, self._started, self._idle = self._started, [], []
            self._cond.notify_all()
        for container in started:
            with contextlib.suppress(OSError):
                os.kill(container.pid, signal.SIGKILL)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._alive -= len(idle)
            self._cond.notify_all()
        for container in idle:
            container.stop()


def _error_result(error_type: str, message: str, started: float) -> InvokeResult:
    return InvokeResult({"errorMessage": message, "errorType": error_type}, "Unhandled", "",
                        (time.perf_counter() - started) * 1000)
