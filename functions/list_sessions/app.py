"""GET /tests/{test_id}/sessions: a test's recent sessions with their theta trajectories
(members of the teachers group only)."""

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.http import api, caller, path_id, query_int
from irtcat.adapters.wiring import adapters, powertools
from irtcat.adapters.wiring import tracer as tracer_for
from irtcat.domain.steps import list_sessions

logger, metrics = powertools("list_sessions")
tracer = tracer_for("list_sessions")
app = api()


@app.get("/tests/<test_id>/sessions")
@tracer.capture_method
def get_sessions(test_id: str) -> Response[str]:
    caller(app).require_teacher()
    limit = query_int(app, "limit", 50, 1, 200)
    rows = list_sessions(path_id("test_id", test_id), adapters().sessions, limit)
    metrics.add_metric(name="SessionListings", unit=MetricUnit.Count, value=1)
    return Response(200, "application/json", json.dumps([r.model_dump(mode="json") for r in rows]))


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
