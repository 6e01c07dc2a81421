"""POST /sessions: start a session and return its first item (201), or the student's active
session of the test as it stands (200)."""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.http import caller, http_errors
from irtcat.adapters.wiring import adapters, powertools
from irtcat.adapters.wiring import tracer as tracer_for
from irtcat.domain.api import StartSessionRequest
from irtcat.domain.base import first_error
from irtcat.domain.session import Rejection
from irtcat.domain.steps import start_session
from pydantic import ValidationError

logger, metrics = powertools("start_session")
tracer = tracer_for("start_session")
app = APIGatewayHttpResolver(cors=CORSConfig())


@app.post("/sessions")
@tracer.capture_method
def post_session() -> Response[str]:
    who = caller(app)
    try:
        request = StartSessionRequest.model_validate(app.current_event.json_body or {})
    except (ValidationError, ValueError, RecursionError) as exc:
        raise BadRequestError(f"invalid request: {first_error(exc)}") from None
    a = adapters()
    try:
        with http_errors():
            who.require_student(request.student_id)
            view, created = start_session(request, a.sessions, a.students, a.banks)
    except Rejection as exc:
        return Response(409, "application/json", json.dumps({"message": str(exc)}))
    if created:
        metrics.add_metric(name="SessionsStarted", unit=MetricUnit.Count, value=1)
    return Response(201 if created else 200, "application/json", view.model_dump_json())


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
