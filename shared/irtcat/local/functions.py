"""Lambda functions run in-process, as the template declares them (CodeUri, Handler,
environment, timeout), with Lambda's error contract."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
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
from typing import Any

from .template import ACCOUNT, REGION

_LOCK = threading.RLock()  # one invocation at a time: environments are process-wide


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
    _callable: Callable[[Any, Any], Any] | None = None

    @contextlib.contextmanager
    def _env(self) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.update(self.environment)
        os.environ.update({
            "AWS_LAMBDA_FUNCTION_NAME": self.name, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon on a laptop
            "POWERTOOLS_SERVICE_NAME": self.logical_id,
        })
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
            with self._env():
                spec.loader.exec_module(module)
            fn = getattr(module, attr, None)
            if not callable(fn):
                raise AttributeError(f"{self.logical_id}: {self.handler} is not a callable")
            self._callable = fn
        return self._callable

    def invoke(self, event: Any) -> InvokeResult:
        """Run the handler; an exception becomes Lambda's ``Unhandled`` error payload."""
        with _LOCK:
            fn = self.load()
            ctx = LambdaContext(self.name, self.memory_mb, self.timeout_s,
                                _deadline=time.monotonic() + self.timeout_s)
            buf = io.StringIO()
            handler = logging.StreamHandler(buf)
            root = logging.getLogger()
            root.addHandler(handler)
            started = time.perf_counter()
            error: str | None = None
            try:
                with self._env(), contextlib.redirect_stdout(buf):
                    payload = fn(json.loads(json.dumps(event)), ctx)
                    payload = json.loads(json.dumps(payload, default=str))
            except Exception as exc:  # noqa: BLE001 - every error goes back as Lambda's would
                error = "Unhandled"
                payload = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
            finally:
                root.removeHandler(handler)
            duration = (time.perf_counter() - started) * 1000
            if error is None and duration > self.timeout_s * 1000:
                error = "Unhandled"
                payload = {"errorMessage": f"Task timed out after {self.timeout_s:.2f} seconds",
                           "errorType": "TimeoutError"}
            return InvokeResult(payload, error, buf.getvalue(), duration)


def log_to_stderr(result: InvokeResult) -> None:
    """Print an invocation's captured logs (for ``irtcat local invoke``)."""
    if result.logs:
        sys.stderr.write(result.logs)
        if not result.logs.endswith("\n"):
            sys.stderr.write("\n")
