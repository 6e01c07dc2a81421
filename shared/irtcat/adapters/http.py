"""What the session API's handlers share: one resolver set-up with one exception handler per
domain error (the shape of Powertools' ``exception_handling`` example), who is calling, and the
bounds on what a client may send.

Every error reply is ``{"statusCode": s, "message": reason}`` and under 1 KB: client input
appears in a reason only as a short, escaped prefix (:func:`echo`), a body over the answer
event's limit is refused before it is parsed, and path and query parameters are checked like
the rest of a request.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from pydantic import ValidationError

from ..domain.access import Caller, Forbidden, Unauthenticated
from ..domain.base import ID_PATTERN, first_error
from ..domain.events import MAX_EVENT_BYTES, MAX_EVENT_DEPTH, nesting_depth
from ..domain.ports import NotFound
from ..domain.session import Rejection
from ..domain.steps import NotAnAnswer, NotServing

ECHO_CHARS = 40  # of client input in a reply
MAX_REASON_CHARS = 400  # a reply's reason, whatever built it
_ID = re.compile(ID_PATTERN)


class BadInput(ValueError):
    """A request the API refuses as it stands (400, with the reason)."""


def echo(value: object) -> str:
    """A short, escaped prefix of client input, fit for a reply or a log line."""
    text = value if isinstance(value, str) else repr(value)
    shown = text[:ECHO_CHARS].encode("unicode_escape").decode("ascii")
    return repr(shown) + (f"... ({len(text):,} characters)" if len(text) > ECHO_CHARS else "")


def reply(status: int, reason: str) -> Response[str]:
    """An error reply: the status and the reason (cut to :data:`MAX_REASON_CHARS`)."""
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + "..."
    return Response(status, "application/json", json.dumps({"statusCode": status, "message": reason}))


_STATUS: list[tuple[type[Exception], int, str]] = [
    (Unauthenticated, 401, ""), (Forbidden, 403, ""), (NotFound, 404, ""), (NotServing, 409, ""),
    (Rejection, 409, ""), (NotAnAnswer, 400, "invalid answer: "), (BadInput, 400, ""),
    (ValidationError, 400, "invalid request: "),
]


def api() -> APIGatewayHttpResolver:
    """A resolver whose domain errors become replies: Unauthenticated 401, Forbidden 403,
    NotFound 404, NotServing and Rejection 409, NotAnAnswer, BadInput and a pydantic
    ValidationError 400, each with its reason."""
    app = APIGatewayHttpResolver(cors=CORSConfig())
    for error, status, prefix in _STATUS:
        def handle(exc: Exception, status: int = status, prefix: str = prefix) -> Response[str]:
            reason = first_error(exc) if isinstance(exc, ValidationError) else str(exc)
            return reply(status, prefix + reason)

        app.exception_handler(error)(handle)
    return app


def caller(app: APIGatewayHttpResolver) -> Caller:
    """The signed-in user, from the claims API Gateway's JWT authorizer passed on (401 if none)."""
    return Caller.from_claims(app.current_event.request_context.authorizer.jwt_claim)


def path_id(name: str, value: str) -> str:
    """A path parameter that must be an id (as every id in the contract: 1-128 of letters,
    digits, '.', '_', ':' and '-', starting with a letter or digit)."""
    if not _ID.fullmatch(value):
        raise BadInput(f"{name} must be 1-128 letters, digits, '.', '_', ':' or '-', got {echo(value)}")
    return value


def json_body(app: APIGatewayHttpResolver, what: str = "request") -> dict[str, Any]:
    """The request's JSON object, refused unparsed when over the answer event's size limit."""
    raw = app.current_event.decoded_body or ""
    size = len(raw.encode()) if isinstance(raw, str) else len(raw)
    if size > MAX_EVENT_BYTES:
        raise BadInput(f"invalid {what}: the body is {size:,} bytes; the limit is {MAX_EVENT_BYTES:,}")
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadInput(f"invalid {what}: the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadInput(f"invalid {what}: the body must be a JSON object")
    if nesting_depth(body) > MAX_EVENT_DEPTH:
        raise BadInput(f"invalid {what}: the body is nested too deeply")
    return body


def query_int(app: APIGatewayHttpResolver, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within [low, high] (ASCII digits only: ``"²".isdigit()``
    is true, but ``int("²")`` raises)."""
    raw = app.current_event.get_query_string_value(name, None)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise BadInput(f"{name} must be a whole number from {low} to {high}, got {echo(raw)}")
    return int(raw)
