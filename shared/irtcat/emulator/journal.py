"""Local state that survives the process: a write-ahead journal of the requests that changed it.

moto keeps every resource in memory. With a journal, an emulator process appends each request
that changed state and succeeded (a DynamoDB write, a Kinesis put, an S3 put, a Cognito sign-up,
...) to a file in the data folder *before* it answers; a stack started on the same folder
deploys the template afresh and replays the journal into it, so it holds what the last one
held. Kinesis and DynamoDB-stream sequence numbers come out the same on replay (moto numbers
records in order), which is what lets the Pipe and the stream pollers resume from their
checkpoints (:class:`Checkpoints`).

What is journaled is decided per request, by operation: reads (Get*, List*, Describe*, Query,
Scan, ...) are not, nor are the calls whose effect is a side effect elsewhere and is journaled
there (StartSyncExecution: its Lambda tasks' writes are journaled one by one), nor SQS's
ReceiveMessage/ChangeMessageVisibility (after a restart a received message is visible again, as
after a visibility timeout). The guarantee: a request answered with success before the process
died is in the journal (the line is written to the operating system before the answer; without
``fsync`` a machine crash can still lose the last lines). A DeleteMessage replayed after a
restart no longer finds its receipt handle: a dead-letter message deleted before a restart may
come back (replaying it again changes nothing).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

_READ_PREFIXES = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "Head", "Validate", "Test")
# operations that change nothing worth keeping, or whose effects are journaled where they happen
_NOT_JOURNALED = frozenset({
    "StartExecution", "StartSyncExecution", "StopExecution", "SendTaskSuccess", "SendTaskFailure",
    "SendTaskHeartbeat", "ReceiveMessage", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch",
    "InitiateAuth", "AdminInitiateAuth", "PutLogEvents", "Invoke",
})
_KEPT_HEADERS = re.compile(r"^(HTTP_|CONTENT_TYPE$)")
_UNKEPT_HEADERS = frozenset({"HTTP_CONTENT_LENGTH", "HTTP_CONNECTION", "HTTP_TRANSFER_ENCODING",
                             "HTTP_KEEP_ALIVE", "HTTP_EXPECT"})


def operation(environ: dict[str, Any], body: bytes) -> str:
    """The AWS operation of a request: the JSON protocols' ``X-Amz-Target``, the query
    protocol's ``Action``, else the HTTP method of a REST call (S3)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return str(target).rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return str(query["Action"][0])
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded") and b"Action=" in body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    return str(environ.get("REQUEST_METHOD", "GET"))


def changes_state(environ: dict[str, Any], body: bytes) -> bool:
    """Whether a request to the emulator changes what a restart must keep."""
    path = str(environ.get("PATH_INFO", ""))
    if path.startswith(("/moto-api", "/_irtcat")):
        return False
    op = operation(environ, body)
    if op in ("GET", "HEAD", "OPTIONS"):
        return False
    return op not in _NOT_JOURNALED and not op.startswith(_READ_PREFIXES)


@dataclass(frozen=True)
class Entry:
    """One journaled request: enough of the WSGI environ to hand it to moto again."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def to_line(self) -> bytes:
        return (json.dumps({"m": self.method, "p": self.path, "q": self.query, "h": self.headers,
                            "b": base64.b64encode(self.body).decode()}, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> Entry:
        d = json.loads(line)
        return cls(d["m"], d["p"], d["q"], dict(d["h"]), base64.b64decode(d["b"]))

    @classmethod
    def of(cls, environ: dict[str, Any], body: bytes) -> Entry:
        headers = {k: str(v) for k, v in environ.items() if _KEPT_HEADERS.match(k) and k not in _UNKEPT_HEADERS}
        return cls(str(environ.get("REQUEST_METHOD", "GET")), str(environ.get("PATH_INFO", "/")),
                   str(environ.get("QUERY_STRING", "")), headers, body)

    def environ(self) -> dict[str, Any]:
        from werkzeug.test import create_environ

        env: dict[str, Any] = create_environ(path=self.path, method=self.method)
        env.update(self.headers)
        env["QUERY_STRING"] = self.query
        env["CONTENT_LENGTH"] = str(len(self.body))
        env["wsgi.input"] = io.BytesIO(self.body)
        return env


def read_body(environ: dict[str, Any]) -> bytes:
    """The request's body, read once; the environ gets a fresh stream of it for the app."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    body: bytes = stream.read(int(length)) if length else stream.read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def peek_body(environ: dict[str, Any]) -> bytes:
    """The body, when deciding what a request is needs it (a form-encoded query-protocol call);
    read as :func:`read_body` does. Other requests are decided from their headers alone."""
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        return read_body(environ)
    return b""


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Journal:
    """An append-only file of :class:`Entry` lines."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - open for the journal's lifetime
        self._lock = threading.Lock()
        self.appended = 0

    def append(self, entry: Entry) -> None:
        line = entry.to_line()
        with self._lock:
            self._file.write(line)  # unbuffered: in the operating system when this returns
            if self.fsync:
                os.fsync(self._file.fileno())
            self.appended += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()


def entries(path: Path) -> Iterator[Entry]:
    """The journal's entries in order; a last line cut short by a crash is left out."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return  # torn by a crash mid-write: the request was never answered
            try:
                yield Entry.from_line(line)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}, line {number}: not a journal entry ({type(exc).__name__}: {exc}); "
                                 "the folder's state cannot be replayed (start with --fresh)") from exc


@dataclass
class Replayed:
    requests: int = 0
    failed: int = 0
    failures: tuple[str, ...] = ()


def replay(path: Path, app: WSGIApp) -> Replayed:
    """Hand every journaled request to ``app`` again, in order. A request that fails now (e.g. an
    SQS DeleteMessage whose receipt handle died with the process) is counted, not fatal."""
    out = Replayed()
    failures: list[str] = []
    for entry in entries(path):
        status: list[str] = []
        body = b"".join(app(entry.environ(), lambda s, h, exc_info=None, seen=status: seen.append(s)))
        out.requests += 1
        if not status or not status[0].startswith("2"):
            out.failed += 1
            if len(failures) < 20:
                op = operation(entry.environ(), entry.body)
                failures.append(f"{op} {entry.path}: {status[0] if status else '?'} {body[:200]!r}")
    out.failures = tuple(failures)
    return out


class Checkpoints:
    """The positions the Pipe and the stream pollers have delivered up to, per source and shard,
    in one small JSON file rewritten atomically (write, then rename) on every change."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._positions: dict[str, str] = {}
        if path is not None and path.exists():
            self._positions = dict(json.loads(path.read_text()))

    def get(self, source: str, shard_id: str) -> str | None:
        with self._lock:
            return self._positions.get(f"{source}|{shard_id}")

    def set(self, source: str, shard_id: str, sequence_number: str) -> None:
        with self._lock:
            self._positions[f"{source}|{shard_id}"] = sequence_number
            if self.path is not None:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self._positions))
                os.replace(tmp, self.path)
