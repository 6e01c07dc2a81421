"""moto in server mode on 127.0.0.1, with the Lambda Invoke API served in front of it.

moto's own Lambda needs Docker; here ``POST /2015-03-31/functions/{name}/invocations`` calls
the real handler in-process (see :mod:`.inprocess` and :mod:`.containers`) and answers as Lambda does, so the state
machine's Retry and Catch see what they would see on AWS. Everything else goes to moto.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import queue
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from waitress.server import create_server
from werkzeug.wrappers import Request, Response

from . import lifetime, moto_patches
from .function import Runner
from .journal import Entry, Journal, Replayed, changes_state, peek_body, read_body, replay

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FaultInjector:
    """Switchable faults for resilience tests: a share of calls to a service answers 5xx/throttle."""

    def __init__(self) -> None:
        self.rates: dict[str, float] = {}
        self.rng = random.Random(0)
        self.function_failures: dict[str, int] = {}
        self.delays: dict[str, float] = {}
        self.remotes: dict[str, str] = {}  # service -> endpoint of the process that serves it
        self._injected: dict[str, int] = {}
        self._lock = threading.Lock()

    def set(self, service: str, rate: float) -> None:
        """Make ``rate`` of the calls to ``service`` (e.g. dynamodb, firehose, lambda) fail."""
        remote = self.remotes.get(service)
        if remote is None:
            self.rates[service] = rate
        else:
            _control(remote, {"service": service, "rate": rate})

    @property
    def injected(self) -> dict[str, int]:
        """Faults injected so far, per service or function, here and in the service processes."""
        with self._lock:
            total = dict(self._injected)
        for remote in set(self.remotes.values()):
            for key, count in _control(remote).items():
                total[key] = total.get(key, 0) + int(count)
        return total

    def fail_next(self, logical_id: str, times: int) -> None:
        """Make the next ``times`` invocations of a function fail with an unhandled error."""
        with self._lock:
            self.function_failures[logical_id] = times

    def slow(self, logical_id: str, seconds: float) -> None:
        """Delay every invocation of a function (0 to stop): widens race windows in tests."""
        self.delays[logical_id] = seconds

    def function_fails(self, logical_id: str) -> bool:
        with self._lock:
            left = self.function_failures.get(logical_id, 0)
            if left <= 0:
                return False
            self.function_failures[logical_id] = left - 1
            self._injected[logical_id] = self._injected.get(logical_id, 0) + 1
            return True

    def hit(self, service: str) -> bool:
        rate = self.rates.get(service, 0.0)
        if rate <= 0:
            return False
        with self._lock:
            if self.rng.random() < rate:
                self._injected[service] = self._injected.get(service, 0) + 1
                return True
        return False


_CONTROL = "/_irtcat/faults"
_JOURNAL = "/_irtcat/journal"
_REQUESTS = "/_irtcat/requests"


def _control(endpoint: str, change: dict[str, Any] | None = None, path: str = _CONTROL,
             timeout_s: float = 10) -> dict[str, Any]:
    """Ask another emulator process's control endpoint ``path``: POST ``change``, or GET what it
    reports (the faults injected)."""
    import urllib.request

    data = None if change is None else json.dumps(change).encode()
    request = urllib.request.Request(endpoint + path, data=data, method="GET" if data is None else "POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
        return dict(json.loads(reply.read()))


def _operation_of(service: str, environ: dict[str, Any]) -> str:
    """``service:Operation`` of an AWS request: the JSON protocols' X-Amz-Target, else the
    query protocol's Action, else the REST method (S3)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    action = re.search(r"(?:^|&)Action=([A-Za-z]+)", environ.get("QUERY_STRING", ""))
    return f"{service}:{action.group(1) if action else environ.get('REQUEST_METHOD', '')}"


def _service_of(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    return m.group(1) if m else ""


_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                         "proxy-authorization", "proxy-authenticate", "content-length"})


class LocalGateway:
    """WSGI app: Lambda Invoke for registered functions, faults if switched on, moto otherwise."""

    def __init__(self, moto_app: WSGIApp, functions: dict[str, Runner]) -> None:
        self.moto_app = moto_app
        self.functions = functions
        self.faults = FaultInjector()
        self._connections = threading.local()
        self.invocations: dict[str, int] = {}
        self.requests: dict[str, int] = {}  # service:Operation -> AWS requests this process served
        self.errors: dict[str, int] = {}
        self._lock = threading.Lock()
        self._serialised = {service: threading.Lock() for service in moto_patches.SERIALISED_SERVICES}
        self.journal: Journal | None = None  # set by persist(): state changes are journaled
        self.dead = False  # set when the stack is killed (the chaos run): answers nothing any more
        self._journal_locks: dict[str, threading.Lock] = {}

    def persist(self, path: Path, fsync: bool = False) -> Replayed:
        """Replay the journal at ``path`` (if any) into moto, then journal every state change
        from here on (see :mod:`.journal`)."""
        replayed = replay(path, self.moto_app)
        self.journal = Journal(path, fsync=fsync)
        return replayed

    def _journaled(self, service: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Run a state-changing request and journal it before answering, if it succeeded; one at a
        time per service, so the journal holds each service's changes in the order moto made them."""
        assert self.journal is not None
        entry = Entry.of(environ, read_body(environ))
        status: list[str] = []

        def capture(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(s)
            return start_response(s, headers, exc_info)

        lock = self._serialised.get(service) or self._journal_locks.setdefault(service, threading.Lock())
        with lock:
            out = list(self.moto_app(environ, capture))
            if status and status[0].startswith("2"):
                self.journal.append(entry)
        return out

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.dead:
            return _json_error("ServiceUnavailable", "the emulator process is dead", 503)(environ, start_response)
        path = environ.get("PATH_INFO", "")
        match = _INVOKE.match(path)
        if match and environ.get("REQUEST_METHOD") == "POST":
            return self._invoke(unquote(match.group("name")), environ, start_response)
        if path in (_CONTROL, _JOURNAL, _REQUESTS):
            return self._control(environ, start_response)
        service = _service_of(environ)
        remote = self.faults.remotes.get(service)
        if remote is not None:
            return self._forward(remote, environ, start_response)
        if service:
            key = _operation_of(service, environ)
            with self._lock:
                self.requests[key] = self.requests.get(key, 0) + 1
        if service and self.faults.hit(service):
            return _json_error("ThrottlingException", "injected fault", 503)(environ, start_response)
        if environ.get("HTTP_X_AMZ_TARGET") == "AWSStepFunctions.StartSyncExecution":
            status, reply = moto_patches.start_sync_execution(Request(environ).get_data())
            headers = {"x-amzn-ErrorType": reply["__type"]} if status != 200 else {}
            return Response(json.dumps(reply).encode(), status=status, content_type="application/x-amz-json-1.0",
                            headers=headers)(environ, start_response)
        if self.journal is not None and changes_state(environ, peek_body(environ)):
            return self._journaled(service, environ, start_response)
        serialised = self._serialised.get(service)
        if serialised is not None:
            with serialised:
                return list(self.moto_app(environ, start_response))
        return self.moto_app(environ, start_response)

    def request_counts(self) -> dict[str, int]:
        """AWS requests served so far per ``service:Operation``, here and in the service processes
        (what a deployed stack would be billed for, per call; Lambda invocations are in
        :attr:`invocations`)."""
        with self._lock:
            total = dict(self.requests)
        for remote in set(self.faults.remotes.values()):
            for key, count in _control(remote, path=_REQUESTS).items():
                total[key] = total.get(key, 0) + int(count)
        return total

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == _REQUESTS:
            with self._lock:
                counts = json.dumps(self.requests).encode()
            return Response(counts, status=200, content_type="application/json")(environ, start_response)
        if environ.get("PATH_INFO") == _JOURNAL:  # persist(), asked by the process that owns this one
            try:
                ask = json.loads(Request(environ).get_data() or b"{}")
                done = self.persist(Path(ask["path"]), fsync=bool(ask.get("fsync")))
            except (ValueError, KeyError, TypeError, OSError) as exc:
                reason = (f'expected {{"path": JOURNAL, "fsync": bool}} and a readable journal: '
                          f"{type(exc).__name__}: {exc}")
                return _json_error("ValidationException", reason)(environ, start_response)
            body = json.dumps({"requests": done.requests, "failed": done.failed, "failures": done.failures}).encode()
            return Response(body, status=200, content_type="application/json")(environ, start_response)
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                change = json.loads(Request(environ).get_data() or b"{}")
                self.faults.set(str(change["service"]), float(change["rate"]))
            except (ValueError, KeyError, TypeError) as exc:
                reason = f'expected {{"service": NAME, "rate": 0..1}}: {type(exc).__name__}: {exc}'
                return _json_error("ValidationException", reason)(environ, start_response)
        body = json.dumps(self.faults.injected).encode()
        return Response(body, status=200, content_type="application/json")(environ, start_response)

    def _forward(self, endpoint: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Pass a request on, unchanged, to the process that serves its service (for clients that
        know only this endpoint; the stack's own clients call that process directly)."""
        import http.client
        from urllib.parse import urlsplit

        connection = getattr(self._connections, endpoint, None)
        if connection is None:
            connection = http.client.HTTPConnection(urlsplit(endpoint).netloc, timeout=300)
            setattr(self._connections, endpoint, connection)
        request = Request(environ)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        target = request.full_path if request.query_string else request.path
        try:
            connection.request(request.method, target, body=request.get_data(), headers=headers)
            reply = connection.getresponse()
            body = reply.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            setattr(self._connections, endpoint, None)
            raise
        out = [(k, v) for k, v in reply.getheaders() if k.lower() not in _HOP_BY_HOP]
        out.append(("Content-Length", str(len(body))))
        start_response(f"{reply.status} {reply.reason}", out)
        return [body]

    def lookup(self, name: str) -> Runner | None:
        """A function by name, ARN or partial ARN (qualifiers ignored)."""
        short = name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        return self.functions.get(short)

    def count_error(self, logical_id: str, error_type: str) -> None:
        with self._lock:
            key = f"{logical_id}:{error_type}"
            self.errors[key] = self.errors.get(key, 0) + 1

    def count(self, name: str) -> None:
        with self._lock:
            self.invocations[name] = self.invocations.get(name, 0) + 1

    def _invoke(self, name: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        fn = self.lookup(name)
        if fn is None:
            body = json.dumps({"Type": "User", "message": f"Function not found: {name}"}).encode()
            resp = Response(body, status=404, content_type="application/json",
                            headers={"x-amzn-ErrorType": "ResourceNotFoundException"})
            return resp(environ, start_response)
        if self.faults.hit("lambda"):
            body = json.dumps({"message": "Rate exceeded (injected)"}).encode()
            resp = Response(body, status=429, content_type="application/json",
                            headers={"x-amzn-ErrorType": "TooManyRequestsException"})
            return resp(environ, start_response)
        request = Request(environ)
        raw = request.get_data()
        event = json.loads(raw) if raw else {}
        result = fn.invoke(event)
        self.count(fn.spec.name)
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if result.error:
            headers["X-Amz-Function-Error"] = result.error
        resp = Response(json.dumps(result.payload).encode(), status=200,
                        content_type="application/json", headers=headers)
        return resp(environ, start_response)


def _json_error(code: str, message: str, status: int = 400) -> Response:
    body = json.dumps({"__type": code, "message": message}).encode()
    return Response(body, status=status, content_type="application/x-amz-json-1.0",
                    headers={"x-amzn-ErrorType": code})


class InProcessLambdaClient:
    """The Invoke call of moto's state machines, dispatched in-process.

    Same request and response contract as the HTTP route (``FunctionError``, JSON ``Payload``,
    throttling as ``TooManyRequestsException``), without a socket round trip per Task: on a
    laptop that round trip costs more than the handler itself.
    """

    def __init__(self, gateway: LocalGateway) -> None:
        self.gateway = gateway

    def invoke(self, FunctionName: str, Payload: bytes | str = b"{}", **_: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        fn = self.gateway.lookup(FunctionName)
        if self.gateway.dead:
            raise ConnectionError("the emulator process is dead")
        if fn is None:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException",
                                         "Message": f"Function not found: {FunctionName}"}}, "Invoke")
        if self.gateway.faults.hit("lambda"):
            raise ClientError({"Error": {"Code": "TooManyRequestsException",
                                         "Message": "Rate exceeded (injected)"}}, "Invoke")
        raw = Payload.encode() if isinstance(Payload, str) else Payload
        self.gateway.count(fn.spec.name)
        if self.gateway.faults.function_fails(fn.spec.logical_id):
            payload: Any = {"errorMessage": "injected failure", "errorType": "InjectedFault"}
            error: str | None = "Unhandled"
        else:
            delay = self.gateway.faults.delays.get(fn.spec.logical_id, 0.0)
            if delay:
                time.sleep(delay)
            result = fn.invoke(json.loads(raw or b"{}"))
            payload, error = result.payload, result.error
            if error:
                self.gateway.count_error(fn.spec.logical_id, str(payload.get("errorType", error)))
        response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST",
                                    "Payload": io.BytesIO(json.dumps(payload).encode())}
        if error:
            response["FunctionError"] = error
        return response


# Services served by a second emulator process: moto runs every request under one GIL, and
# DynamoDB (with the tablets' polls) and Kinesis (the tablets' puts and the Pipe's reads) take
# most of the requests per answer; in a process of their own they have a core of their own.
# Firehose stays: it writes into this process's S3.
SERVICE_PROCESS_SERVICES = ("dynamodb", "kinesis")


class ServiceProcess:
    """An emulator process serving some services; clients reach it through
    ``AWS_ENDPOINT_URL_<SERVICE>``, which the runtime sets for itself and for its containers."""

    def __init__(self, services: tuple[str, ...]) -> None:
        """Launch it (it starts while this process gets ready; :meth:`wait` for its endpoint)."""
        self.services = services
        self.process = lifetime.start([sys.executable, "-m", "irtcat.emulator.server", *services],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._ready: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read_port, daemon=True).start()
        self.endpoint = ""

    def _read_port(self) -> None:
        self._ready.put(self.process.stdout.readline() if self.process.stdout else "")

    def wait(self, timeout_s: float = 60.0) -> str:
        """Its endpoint, once it serves."""
        if not self.endpoint:
            try:
                port = int(json.loads(self._ready.get(timeout=timeout_s))["port"])
            except (queue.Empty, ValueError, KeyError) as exc:
                self.process.kill()
                raise RuntimeError(f"the emulator process for {', '.join(self.services)} did not start") from exc
            self.endpoint = f"http://127.0.0.1:{port}"
        return self.endpoint

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin:
                self.process.stdin.close()  # it stops when its stdin closes
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _endpoint_variable(service: str) -> str:
    return f"AWS_ENDPOINT_URL_{service.upper()}"


def use_endpoint(endpoint: str) -> None:
    """Point this process's boto3 clients at a running local stack's one endpoint (which forwards
    DynamoDB and Kinesis to their process); drop per-service endpoints inherited from another
    stack."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    for service in SERVICE_PROCESS_SERVICES:
        os.environ.pop(_endpoint_variable(service), None)


class EmulatorServer:
    """The emulator on 127.0.0.1:port (0 = any free port), in a background thread; the services in
    ``service_processes`` are served by a second process (this one forwards what reaches it)."""

    def __init__(self, functions: dict[str, Runner], port: int = 0, host: str = "127.0.0.1",
                 threads: int = 48, service_processes: tuple[str, ...] = SERVICE_PROCESS_SERVICES,
                 state_machines: bool = True) -> None:
        # launched first: it imports moto while this process does
        self.services = ServiceProcess(service_processes) if service_processes else None
        # user pool and client ids from the pool's name, not at random: the same on every start,
        # so a restarted stack's journal and the tokens it issued still name its pool
        for strategy in ("MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY", "MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY"):
            os.environ.setdefault(strategy, "HASH")
        from moto.core.config import default_user_config
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        moto_patches.apply(moto_patches.SERVICE_PATCHES)
        self.gateway = LocalGateway(DomainDispatcherApplication(create_backend_app), functions)
        if state_machines:  # a service process serves no state machine: it skips their imports
            default_user_config["stepfunctions"] = {"execute_state_machine": True}
            moto_patches.apply(moto_patches.STATE_MACHINE_PATCHES)
            moto_patches.route_state_machine_clients(InProcessLambdaClient(self.gateway))
        # waitress keeps HTTP/1.1 connections alive (werkzeug's dev server closes every one,
        # which costs a TCP connect per AWS call); enough threads for nested calls:
        # state machine -> Lambda Invoke -> handler -> DynamoDB/S3/Firehose.
        logging.getLogger("waitress").setLevel(logging.ERROR)
        # moto logs every failed state with the repr of the whole parsed definition (a very long
        # line); the failure itself is reported by DescribeExecution, where the Pipe reads it
        logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
        # ... and warns, without the error, for every failed Task and Map iteration (a killed
        # container, a stack killed under its executions): the failure is in the execution too
        for noisy in ("state.exec.execute_state", "state.exec.state_map.iteration.iteration_worker"):
            logging.getLogger(f"moto.stepfunctions.parser.asl.component.{noisy}").setLevel(logging.ERROR)
        self.server = create_server(self.gateway, host=host, port=port, threads=threads,
                                    connection_limit=1000, channel_timeout=300, ident="irtcat-local")
        self.host = host
        self.port = int(self.server.effective_port)
        self._thread: threading.Thread | None = None
        self.service_processes = service_processes

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        from ..adapters.wiring import reset

        self._saved_env = {k: os.environ.get(k) for k in
                           ("MOTO_PORT", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                            "AWS_DEFAULT_REGION", *map(_endpoint_variable, self.service_processes))}
        if self.services is not None:
            # every client made from here on (containers inherit the variables) calls it directly
            endpoint = self.services.wait()
            for service in self.service_processes:
                os.environ[_endpoint_variable(service)] = endpoint
                self.gateway.faults.remotes[service] = endpoint
        reset()
        # moto's state machines call Lambda at localhost:$MOTO_PORT; clients follow AWS_ENDPOINT_URL
        os.environ["MOTO_PORT"] = str(self.port)
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self._thread = threading.Thread(target=self.server.run, name="emulator", daemon=True)
        self._thread.start()
        # moto's backends live in this process: a stack started after another one starts empty
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"),
                               timeout=30).read()

    def persist(self, data_dir: Path, fsync: bool = False) -> Replayed:
        """Replay each emulator process's journal in ``data_dir`` and journal from here on
        (ValueError, with the reason, if a journal cannot be replayed)."""
        import urllib.error

        done = self.gateway.persist(data_dir / "journal-main.jsonl", fsync)
        if self.services is not None:
            ask = {"path": str((data_dir / "journal-services.jsonl").resolve()), "fsync": fsync}
            try:
                theirs = _control(self.services.endpoint, ask, path=_JOURNAL, timeout_s=600)
            except urllib.error.HTTPError as exc:  # the service process's journal cannot be replayed
                raise ValueError(json.loads(exc.read() or b"{}").get("message", str(exc))) from exc
            done = Replayed(done.requests + int(theirs["requests"]), done.failed + int(theirs["failed"]),
                            done.failures + tuple(theirs["failures"]))
        return done

    def kill(self) -> None:
        """Die as a killed process would (the chaos run's restart): answer nothing more, SIGKILL
        the service process, close the port with requests in flight, journal no more."""
        import signal

        self.gateway.dead = True
        if self.services is not None:
            self.services.process.send_signal(signal.SIGKILL)
            self.services.process.wait(timeout=10)
            self.services = None
        self.server.close()
        self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=0.1)
        if self.gateway.journal is not None:
            self.gateway.journal.close()

    def stop(self) -> None:
        from ..adapters.wiring import reset

        self.server.close()
        if self.gateway.journal is not None:
            self.gateway.journal.close()
        # waitress's worker threads are not daemons: stop them, or they keep the process alive
        self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        if self._thread:
            self._thread.join(timeout=5)
        if self.services is not None:
            self.services.stop()
            self.gateway.faults.remotes.clear()
        for key, value in getattr(self, "_saved_env", {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset()


def _serve_services(services: tuple[str, ...]) -> None:
    """A service process: serve until stdin closes or its parent is gone."""
    lifetime.watch_parent()
    server = EmulatorServer({}, service_processes=(), state_machines=False)
    server.start()
    print(json.dumps({"port": server.port, "services": services}), flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    _serve_services(tuple(sys.argv[1:]))
