"""Running a function's handler in this process: load its module once (a warm container), run
one event at a time with Lambda's error contract and the function's environment, and capture what
the handler prints as the invocation's logs. A container process runs its function this way too
(:func:`serve`, its main loop)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from . import lifetime
from .function import FunctionSpec, InvokeResult, LambdaContext, common_environment

_ENV_LOCK = threading.RLock()


class _ThreadLocalStdout(io.TextIOBase):
    """sys.stdout while the runtime is up: each invocation's prints and log lines go to that
    invocation's buffer (Powertools' loggers hold the stream they saw at import time)."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self.local = threading.local()

    def write(self, text: str) -> int:
        buf = getattr(self.local, "buffer", None)
        return (buf or self.fallback).write(text)  # type: ignore[no-any-return]

    def flush(self) -> None:
        if getattr(self.local, "buffer", None) is None:
            self.fallback.flush()

    @contextlib.contextmanager
    def capture(self) -> Iterator[io.StringIO]:
        buf = io.StringIO()
        previous = getattr(self.local, "buffer", None)
        self.local.buffer = buf
        try:
            yield buf
        finally:
            self.local.buffer = previous


def _stdout() -> _ThreadLocalStdout:
    if not isinstance(sys.stdout, _ThreadLocalStdout):
        sys.stdout = _ThreadLocalStdout(sys.stdout)
    return sys.stdout


def shared_environment(functions: list[InProcessFunction]) -> bool:
    """Apply the variables every function agrees on to the process, once.

    Returns False when two functions disagree on a variable: their invocations then swap the
    environment under a lock, one at a time.
    """
    merged = common_environment([fn.spec for fn in functions])
    if merged is None:
        return False
    os.environ.update(merged)
    for fn in functions:
        fn.isolated = False
    return True


@dataclass
class InProcessFunction:
    """A function run in this process (``irtcat local invoke``, the unit tests, and inside each
    container process)."""

    spec: FunctionSpec
    isolated: bool = True  # swap the environment per invocation (see shared_environment)
    _callable: Callable[[Any, Any], Any] | None = None
    # like a Lambda container, a function serves one event at a time (handlers may keep
    # per-request state in module globals, as Powertools' resolvers do)
    _busy: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextlib.contextmanager
    def _env(self) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.update(self.spec.lambda_environment())
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def load(self) -> Callable[[Any, Any], Any]:
        """Import the handler module (once, like a warm container)."""
        if self._callable is None:
            spec = self.spec
            module_name, _, attr = spec.handler.rpartition(".")
            path = Path(spec.code_dir) / f"{module_name.replace('.', '/')}.py"
            if not path.is_file():
                raise FileNotFoundError(f"{spec.logical_id}: handler module {path} not found")
            module_spec = importlib.util.spec_from_file_location(f"irtcat_fn_{spec.logical_id}", path)
            assert module_spec and module_spec.loader
            module: ModuleType = importlib.util.module_from_spec(module_spec)
            out = _stdout()
            with _ENV_LOCK, self._env(), out.capture():
                module_spec.loader.exec_module(module)
            fn = getattr(module, attr, None)
            if not callable(fn):
                raise AttributeError(f"{spec.logical_id}: {spec.handler} is not a callable")
            self._callable = fn
        return self._callable

    def invoke(self, event: Any) -> InvokeResult:
        """Run the handler; an exception becomes Lambda's ``Unhandled`` error payload."""
        fn = self.load()
        timeout_s = self.spec.timeout_s
        ctx = LambdaContext(self.spec.name, self.spec.memory_mb, timeout_s,
                            _deadline=time.monotonic() + timeout_s)
        env = self._env() if self.isolated else contextlib.nullcontext()
        lock = _ENV_LOCK if self.isolated else contextlib.nullcontext()
        error: str | None = None
        with self._busy, lock, env, _stdout().capture() as buf:
            started = time.perf_counter()
            try:
                payload = fn(json.loads(json.dumps(event)), ctx)
                payload = json.loads(json.dumps(payload, default=str))
            except Exception as exc:
                error = "Unhandled"
                payload = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
        duration = (time.perf_counter() - started) * 1000
        if error is None and duration > timeout_s * 1000:
            error = "Unhandled"
            payload = {"errorMessage": f"Task timed out after {timeout_s:.2f} seconds",
                       "errorType": "TimeoutError"}
        return InvokeResult(payload, error, buf.getvalue(), duration)

    def close(self) -> None:
        """Nothing to release: the handler's module stays imported, as in a warm container."""


def log_to_stderr(result: InvokeResult) -> None:
    """Print an invocation's captured logs (for ``irtcat local invoke``)."""
    if result.logs:
        sys.stderr.write(result.logs)
        if not result.logs.endswith("\n"):
            sys.stderr.write("\n")


def serve(spec: FunctionSpec, requests: IO[str], replies: IO[str]) -> None:
    """A container process's main loop: load the handler once, then one event at a time.

    The protocol is one JSON document per line (events in, results out); the handler's own
    output (prints, Powertools' log lines) is captured per invocation and sent back as its logs.
    """
    os.dup2(2, 1)  # anything written to fd 1 goes to stderr, never into the caller's stdout
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    # the whole process is this function's: its environment is the process environment
    os.environ.update(spec.lambda_environment())
    fn = InProcessFunction(spec, isolated=False)
    try:
        fn.load()
    except BaseException as exc:
        _reply(replies, ["init_error", f"{type(exc).__name__}: {exc}"])
        return
    _reply(replies, ["ready", None])
    for line in requests:
        result = fn.invoke(json.loads(line))
        _reply(replies, [result.payload, result.error, result.logs, result.duration_ms])


def _reply(replies: IO[str], message: list[Any]) -> None:
    replies.write(json.dumps(message) + "\n")
    replies.flush()


def serve_socket(spec: dict[str, Any], channel: Any, environment: dict[str, str]) -> None:
    """A container whose protocol is a socket (a process forked by a fork server)."""
    import socket

    os.environ.clear()
    os.environ.update(environment)
    sock = channel if isinstance(channel, socket.socket) else socket.socket(fileno=channel.detach())
    serve(FunctionSpec(**spec), sock.makefile("r", encoding="utf-8"), sock.makefile("w", encoding="utf-8"))


def _serve_stdio(spec: FunctionSpec) -> None:
    """A container started as a fresh interpreter: the protocol is its stdin and stdout."""
    lifetime.watch_parent()
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    serve(spec, sys.stdin, replies)


if __name__ == "__main__":
    _serve_stdio(FunctionSpec(**json.loads(sys.argv[1])))
