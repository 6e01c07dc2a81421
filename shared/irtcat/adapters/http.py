"""The session API's handlers share this: who is calling, and domain errors as HTTP errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.exceptions import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    ServiceError,
    UnauthorizedError,
)

from ..domain.access import Caller, Forbidden, Unauthenticated
from ..domain.ports import NotFound
from ..domain.steps import NotAnAnswer, NotServing


@contextmanager
def http_errors() -> Iterator[None]:
    """Unauthenticated -> 401, Forbidden -> 403, NotFound -> 404, NotServing -> 409,
    NotAnAnswer -> 400, each with its reason."""
    try:
        yield
    except Unauthenticated as exc:
        raise UnauthorizedError(str(exc)) from None
    except Forbidden as exc:
        raise ForbiddenError(str(exc)) from None
    except NotFound as exc:
        raise NotFoundError(str(exc)) from None
    except NotServing as exc:
        raise ServiceError(409, str(exc)) from None
    except NotAnAnswer as exc:
        raise BadRequestError(f"invalid answer: {exc}") from None


def caller(app: APIGatewayHttpResolver) -> Caller:
    """The signed-in user, from the claims API Gateway's JWT authorizer passed on (401 if none)."""
    with http_errors():
        return Caller.from_claims(app.current_event.request_context.authorizer.jwt_claim)
