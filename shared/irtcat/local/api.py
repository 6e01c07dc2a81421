"""API Gateway HTTP API (payload format 2.0) events, for invoking the API handlers locally."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def http_event(method: str, path: str, body: Any = None, path_parameters: dict[str, str] | None = None,
               route_key: str | None = None, headers: dict[str, str] | None = None,
               query: str = "", request_id: str | None = None,
               time_epoch_ms: int | None = None) -> dict[str, Any]:
    """An HTTP API v2 proxy event as API Gateway would deliver it."""
    return {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", **(headers or {})},
        "pathParameters": path_parameters or {},
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "irtcat-local"},
            "requestId": request_id or str(uuid.uuid4()), "routeKey": route_key or f"{method} {path}",
            "stage": "$default", "timeEpoch": time_epoch_ms or int(time.time() * 1000),
        },
        "body": None if body is None else (body if isinstance(body, str) else json.dumps(body)),
        "isBase64Encoded": False,
    }


def start_session_event(student_id: str, test_id: str, **fixed: Any) -> dict[str, Any]:
    return http_event("POST", "/sessions", {"student_id": student_id, "test_id": test_id},
                      route_key="POST /sessions", **fixed)


def get_session_event(session_id: str, **fixed: Any) -> dict[str, Any]:
    return http_event("GET", f"/sessions/{session_id}", path_parameters={"session_id": session_id},
                      route_key="GET /sessions/{session_id}", **fixed)
