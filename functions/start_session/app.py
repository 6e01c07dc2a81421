"""POST /sessions: start a session and return its first item (201), or the student's active
session of the test as it stands (200)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.http import api, caller, json_body
from irtcat.adapters.wiring import adapters, powertools
from irtcat.adapters.wiring import tracer as tracer_for
from irtcat.domain.api import StartSessionRequest, link_media
from irtcat.domain.steps import start_session

logger, metrics = powertools("start_session")
tracer = tracer_for("start_session")
app = api()


@app.post("/sessions")
@tracer.capture_method
def post_session() -> Response[str]:
    who = caller(app)
    request = StartSessionRequest.model_validate(json_body(app))
    who.require_student(request.student_id)
    a = adapters()
    view, created = start_session(request, a.sessions, a.students, a.banks, warn=_uncontrolled)
    if created:
        metrics.add_metric(name="SessionsStarted", unit=MetricUnit.Count, value=1)
    return Response(201 if created else 200, "application/json", link_media(view, a.media.url).model_dump_json())


def _uncontrolled(problem: str) -> None:
    """A test whose bank lacks the exposure control its policy asks for: said, and counted."""
    logger.warning(problem)
    metrics.add_metric(name="ExposureControlMissing", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
