"""API Gateway HTTP API (payload format 2.0) events, for invoking the API handlers locally."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import JwtAuthorizer


def http_event(method: str, path: str, body: Any = None, path_parameters: dict[str, str] | None = None,
               route_key: str | None = None, headers: dict[str, str] | None = None,
               query: str = "", request_id: str | None = None,
               time_epoch_ms: int | None = None, claims: dict[str, str] | None = None) -> dict[str, Any]:
    """An HTTP API v2 proxy event as API Gateway would deliver it; ``claims`` are the verified
    JWT claims its authorizer passes on (``requestContext.authorizer.jwt``)."""
    authorizer = {"authorizer": {"jwt": {"claims": claims, "scopes": None}}} if claims is not None else {}
    parameters = _query_parameters(query)
    return {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", **(headers or {})},
        "pathParameters": path_parameters or {},
        **({"queryStringParameters": parameters} if parameters else {}),
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "irtcat-local"},
            "requestId": request_id or str(uuid.uuid4()), "routeKey": route_key or f"{method} {path}",
            "stage": "$default", "timeEpoch": time_epoch_ms or int(time.time() * 1000),
            **authorizer,
        },
        "body": None if body is None else (body if isinstance(body, str) else json.dumps(body)),
        "isBase64Encoded": False,
    }


def _query_parameters(query: str) -> dict[str, str]:
    """``queryStringParameters`` as API Gateway's payload 2.0 gives them: decoded, a repeated
    name's values joined by commas; absent (empty) when there is no query string."""
    from urllib.parse import parse_qsl

    out: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def id_token_claims(user_id: str, groups: tuple[str, ...] = ()) -> dict[str, str]:
    """Claims of a Cognito ID token as API Gateway's JWT authorizer passes them to a route's
    Lambda (strings; arrays as "[a b]"): for invoking API handlers directly, as tests and
    ``irtcat local invoke`` do. Through the local HTTP API they come from a real token."""
    claims = {"cognito:username": user_id, "token_use": "id", "sub": str(uuid.uuid5(uuid.NAMESPACE_OID, user_id))}
    if groups:
        claims["cognito:groups"] = "[" + " ".join(groups) + "]"
    return claims


def start_session_event(student_id: str, test_id: str, **fixed: Any) -> dict[str, Any]:
    return http_event("POST", "/sessions", {"student_id": student_id, "test_id": test_id},
                      route_key="POST /sessions", **fixed)


def get_session_event(session_id: str, **fixed: Any) -> dict[str, Any]:
    return http_event("GET", f"/sessions/{session_id}", path_parameters={"session_id": session_id},
                      route_key="GET /sessions/{session_id}", **fixed)


class LocalHttpApi:
    """A Docker-free ``sam local start-api``: the template's HTTP API routes on 127.0.0.1.

    Each request becomes an HTTP API payload-2.0 event for the route's real handler; CORS
    follows the API's ``CorsConfiguration``; paths that are not routes are served from ``web/``
    (the tablet app).
    """

    def __init__(self, routes: list[tuple[str, str, Any]], cors: dict[str, Any], static_dir: Path | None,
                 authorizer: JwtAuthorizer | None = None, web_config: dict[str, str] | None = None) -> None:
        import re

        self.routes = []
        for method, path, fn in routes:
            pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "/?$"
            self.routes.append((method.upper(), re.compile(pattern), path, fn))
        self.cors = cors
        self.static_dir = static_dir
        self.authorizer = authorizer
        self.web_config = web_config or {}
        self.requests: dict[str, int] = {}  # route key -> requests answered (API Gateway bills each)
        self._lock = threading.Lock()

    def _cors_headers(self, origin: str | None) -> dict[str, str]:
        allowed = self.cors.get("AllowOrigins", [])
        if not allowed or origin is None:
            return {}
        value = "*" if "*" in allowed else (origin if origin in allowed else "")
        if not value:
            return {}
        return {"Access-Control-Allow-Origin": value}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        from werkzeug.wrappers import Request, Response

        from .auth import AuthError

        request = Request(environ)
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS":
            headers = {**self._cors_headers(origin),
                       "Access-Control-Allow-Methods": ",".join(self.cors.get("AllowMethods", [])),
                       "Access-Control-Allow-Headers": ",".join(self.cors.get("AllowHeaders", [])),
                       "Access-Control-Max-Age": str(self.cors.get("MaxAge", 0))}
            return Response(status=204, headers=headers)(environ, start_response)
        for method, pattern, path, fn in self.routes:
            m = pattern.match(request.path)
            if m and method == request.method:
                with self._lock:
                    self.requests[f"{method} {path}"] = self.requests.get(f"{method} {path}", 0) + 1
                headers = {k.lower(): v for k, v in request.headers.items()}
                claims = None
                if self.authorizer is not None:
                    try:
                        claims = self.authorizer.claims(headers)
                    except AuthError:
                        resp = Response(json.dumps({"message": "Unauthorized"}), status=401,
                                        content_type="application/json")
                        for k, v in self._cors_headers(origin).items():
                            resp.headers[k] = v
                        return resp(environ, start_response)
                event = http_event(request.method, request.path, request.get_data(as_text=True) or None,
                                   path_parameters=m.groupdict(), route_key=f"{method} {path}",
                                   headers=headers, query=request.query_string.decode(), claims=claims)
                result = fn.invoke(event)
                if result.error:
                    body = json.dumps({"message": "Internal Server Error"})
                    resp = Response(body, status=502, content_type="application/json")
                else:
                    payload = result.payload
                    resp = Response(payload.get("body") or "", status=int(payload.get("statusCode", 200)),
                                    headers=payload.get("headers") or {})
                for k, v in self._cors_headers(origin).items():
                    resp.headers[k] = v
                return resp(environ, start_response)
        return self._static(request, environ, start_response)

    def _static(self, request: Any, environ: dict[str, Any], start_response: Any) -> Any:
        import mimetypes

        from werkzeug.wrappers import Response

        if request.method == "GET" and request.path == "/config.json" and self.web_config:
            # what a static host of web/ would serve next to the app: where to sign in and call
            return Response(json.dumps(self.web_config), content_type="application/json")(environ, start_response)
        if self.static_dir is None or request.method != "GET":
            return Response(json.dumps({"message": "Not Found"}), status=404,
                            content_type="application/json")(environ, start_response)
        rel = request.path.lstrip("/") or "index.html"
        target = (self.static_dir / rel).resolve()
        if not str(target).startswith(str(self.static_dir.resolve())) or not target.is_file():
            return Response("not found", status=404)(environ, start_response)
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Response(target.read_bytes(), content_type=ctype)(environ, start_response)


def http_api_routes(sam_template: dict[str, Any]) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """(method, path, function logical id) of every HttpApi event, and the API's CORS settings."""
    routes = []
    cors: dict[str, Any] = {}
    for logical_id, res in sam_template["Resources"].items():
        if res["Type"] == "AWS::Serverless::HttpApi":
            cors = res.get("Properties", {}).get("CorsConfiguration", {}) or {}
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for ev in (res.get("Properties", {}).get("Events") or {}).values():
            if ev.get("Type") == "HttpApi":
                routes.append((ev["Properties"]["Method"], ev["Properties"]["Path"], logical_id))
    return routes, cors
