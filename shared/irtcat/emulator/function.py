"""A Lambda function as the template declares it (CodeUri, Handler, environment, timeout,
memory), and what invoking one returns. How a function runs is the runner's business:
:mod:`.inprocess` (in this process) or :mod:`.containers` (container processes)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from .template import ACCOUNT, REGION


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the template: plain data (it crosses into container processes as JSON)."""

    logical_id: str
    name: str
    code_dir: str
    handler: str
    environment: dict[str, str]
    timeout_s: float = 3.0
    memory_mb: int = 128

    def lambda_environment(self) -> dict[str, str]:
        """The function's variables plus the ones Lambda's runtime sets."""
        return {
            **self.environment,
            "AWS_LAMBDA_FUNCTION_NAME": self.name, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon on a laptop
            "POWERTOOLS_SERVICE_NAME": self.logical_id,
        }


@dataclass
class InvokeResult:
    """What Lambda's Invoke API returns: a payload, and the function error type if any."""

    payload: Any
    error: str | None
    logs: str
    duration_ms: float


def common_environment(specs: list[FunctionSpec]) -> dict[str, str] | None:
    """The variables every function sets alike, or None when two functions disagree on one."""
    merged: dict[str, str] = {}
    for spec in specs:
        for key, value in spec.environment.items():
            if merged.setdefault(key, value) != value:
                return None
    return merged


class Runner(Protocol):
    """Something that runs a function's invocations (Lambda's Invoke, for one function)."""

    spec: FunctionSpec

    def invoke(self, event: Any) -> InvokeResult: ...

    def close(self) -> None: ...


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
