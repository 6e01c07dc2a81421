"""GET /tests/{test_id}/sessions: a test's recent sessions with their theta trajectories
(members of the teachers group only)."""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.http import caller, http_errors
from irtcat.adapters.wiring import adapters, powertools
from irtcat.adapters.wiring import tracer as tracer_for
from irtcat.domain.steps import list_sessions

logger, metrics = powertools("list_sessions")
tracer = tracer_for("list_sessions")
app = APIGatewayHttpResolver(cors=CORSConfig())


@app.get("/tests/<test_id>/sessions")
@tracer.capture_method
def get_sessions(test_id: str) -> Response[str]:
    with http_errors():
        caller(app).require_teacher()
    raw = app.current_event.get_query_string_value("limit", "50") or "50"
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise BadRequestError("limit must be a whole number from 1 to 200")
    rows = list_sessions(test_id, adapters().sessions, int(raw))
    metrics.add_metric(name="SessionListings", unit=MetricUnit.Count, value=1)
    return Response(200, "application/json", json.dumps([r.model_dump(mode="json") for r in rows]))


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
