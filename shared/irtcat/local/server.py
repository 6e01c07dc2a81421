"""moto in server mode on 127.0.0.1, with the Lambda Invoke API served in front of it.

moto's own Lambda needs Docker; here ``POST /2015-03-31/functions/{name}/invocations`` calls
the real handler in-process (see :mod:`.functions`) and answers as Lambda does, so the state
machine's Retry and Catch see what they would see on AWS. Everything else goes to moto.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from .functions import LocalFunction

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FaultInjector:
    """Switchable faults for resilience tests: a share of calls to a service answers 5xx/throttle."""

    def __init__(self) -> None:
        self.rates: dict[str, float] = {}
        self.rng = random.Random(0)
        self.injected: dict[str, int] = {}
        self._lock = threading.Lock()

    def set(self, service: str, rate: float) -> None:
        self.rates[service] = rate

    def hit(self, service: str) -> bool:
        rate = self.rates.get(service, 0.0)
        if rate <= 0:
            return False
        with self._lock:
            if self.rng.random() < rate:
                self.injected[service] = self.injected.get(service, 0) + 1
                return True
        return False


def _service_of(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    return m.group(1) if m else ""


class LocalGateway:
    """WSGI app: Lambda Invoke for registered functions, faults if switched on, moto otherwise."""

    def __init__(self, moto_app: WSGIApp, functions: dict[str, LocalFunction]) -> None:
        self.moto_app = moto_app
        self.functions = functions
        self.faults = FaultInjector()
        self.invocations: dict[str, int] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        match = _INVOKE.match(path)
        if match and environ.get("REQUEST_METHOD") == "POST":
            return self._invoke(unquote(match.group("name")), environ, start_response)
        service = _service_of(environ)
        if service and self.faults.hit(service):
            body = json.dumps({"__type": "ThrottlingException", "message": "injected fault"}).encode()
            resp = Response(body, status=503, content_type="application/x-amz-json-1.0",
                            headers={"x-amzn-ErrorType": "ThrottlingException"})
            return resp(environ, start_response)
        return self.moto_app(environ, start_response)

    def _invoke(self, name: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        short = name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        fn = self.functions.get(short)
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
        self.invocations[short] = self.invocations.get(short, 0) + 1
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if result.error:
            headers["X-Amz-Function-Error"] = result.error
        resp = Response(json.dumps(result.payload).encode(), status=200,
                        content_type="application/json", headers=headers)
        return resp(environ, start_response)


class EmulatorServer:
    """The emulator on 127.0.0.1:port (0 = any free port), in a background thread."""

    def __init__(self, functions: dict[str, LocalFunction], port: int = 0, host: str = "127.0.0.1") -> None:
        from moto.core.config import default_user_config
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.gateway = LocalGateway(DomainDispatcherApplication(create_backend_app), functions)
        self.server: BaseWSGIServer = make_server(host, port, self.gateway, threaded=True)
        self.host = host
        self.port = self.server.server_port
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        # moto's state machines call Lambda at localhost:$MOTO_PORT; clients follow AWS_ENDPOINT_URL
        os.environ["MOTO_PORT"] = str(self.port)
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self._thread = threading.Thread(target=self.server.serve_forever, name="emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
