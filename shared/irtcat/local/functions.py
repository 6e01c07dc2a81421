"""Lambda functions run in-process, as the template declares them (CodeUri, Handler,
environment, timeout), with Lambda's error contract."""

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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .template import ACCOUNT, REGION

if TYPE_CHECKING:
    from .containers import ContainerPool

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


def shared_environment(functions: list[LocalFunction]) -> bool:
    """Apply the variables every function agrees on to the process, once.

    Returns False when two functions disagree on a variable: their invocations then swap the
    environment under a lock, one at a time.
    """
    merged: dict[str, str] = {}
    for fn in functions:
        for key, value in fn.environment.items():
            if merged.setdefault(key, value) != value:
                return False
    os.environ.update(merged)
    for fn in functions:
        fn.isolated = False
    return True


@dataclass
class LambdaContext:
    """The subset of Lambda's context object that handlers and Powertools use."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class InvokeResult:
    """What Lambda's Invoke API returns: a payload, and the function error type if any."""

    payload: Any
    error: str | None
    logs: str
    duration_ms: float


@dataclass
class LocalFunction:
    """One function of the template, loaded from its CodeUri."""

    logical_id: str
    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_s: float = 3.0
    memory_mb: int = 128
    isolated: bool = True  # swap the environment per invocation (see shared_environment)
    _callable: Callable[[Any, Any], Any] | None = None
    # One warm container per function: like Lambda, a container serves one event at a time
    # (handlers may keep per-request state in module globals, as Powertools' resolvers do).
    _container: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # When set (by the local runtime), invocations run in container processes (see containers.py).
    containers: ContainerPool | None = field(default=None, repr=False)

    def lambda_environment(self) -> dict[str, str]:
        """The function's variables plus the ones Lambda's runtime sets."""
        return {
            **self.environment,
            "AWS_LAMBDA_FUNCTION_NAME": self.name, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon on a laptop
            "POWERTOOLS_SERVICE_NAME": self.logical_id,
        }

    @contextlib.contextmanager
    def _env(self) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.update(self.lambda_environment())
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def load(self) -> Callable[[Any, Any], Any]:
        """Import the handler module (once, like a warm container)."""
        if self._callable is None:
            module_name, _, attr = self.handler.rpartition(".")
            path = self.code_dir / f"{module_name.replace('.', '/')}.py"
            if not path.is_file():
                raise FileNotFoundError(f"{self.logical_id}: handler module {path} not found")
            spec = importlib.util.spec_from_file_location(f"irtcat_fn_{self.logical_id}", path)
            assert spec and spec.loader
            module: ModuleType = importlib.util.module_from_spec(spec)
            out = _stdout()
            with _ENV_LOCK, self._env(), out.capture():
                spec.loader.exec_module(module)
            fn = getattr(module, attr, None)
            if not callable(fn):
                raise AttributeError(f"{self.logical_id}: {self.handler} is not a callable")
            self._callable = fn
        return self._callable

    def invoke(self, event: Any) -> InvokeResult:
        """Run the handler; an exception becomes Lambda's ``Unhandled`` error payload."""
        if self.containers is not None:
            return self.containers.invoke(event)
        fn = self.load()
        ctx = LambdaContext(self.name, self.memory_limit(), self.timeout_s,
                            _deadline=time.monotonic() + self.timeout_s)
        env = self._env() if self.isolated else contextlib.nullcontext()
        lock = _ENV_LOCK if self.isolated else contextlib.nullcontext()
        error: str | None = None
        with self._container, lock, env, _stdout().capture() as buf:
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
        if error is None and duration > self.timeout_s * 1000:
            error = "Unhandled"
            payload = {"errorMessage": f"Task timed out after {self.timeout_s:.2f} seconds",
                       "errorType": "TimeoutError"}
        return InvokeResult(payload, error, buf.getvalue(), duration)

    def memory_limit(self) -> int:
        return self.memory_mb


def log_to_stderr(result: InvokeResult) -> None:
    """Print an invocation's captured logs (for ``irtcat local invoke``)."""
    if result.logs:
        sys.stderr.write(result.logs)
        if not result.logs.endswith("\n"):
            sys.stderr.write("\n")
