"""POST /sessions/{session_id}/answers: put a tablet's answer on the Kinesis stream (202).

For clients that cannot hold AWS credentials: a signed-in student may answer as themselves only
(the pipeline then rejects an answer whose student does not own the session). The tablet chooses the ``event_id`` and reuses
it when it retries a failed submit, so a retry is acknowledged downstream as a duplicate.
"""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.http import caller, http_errors
from irtcat.adapters.runtime import answer_stream, powertools
from irtcat.adapters.runtime import tracer as tracer_for
from irtcat.domain.events import AnswerEvent
from pydantic import ValidationError

logger, metrics = powertools("publish_answer")
tracer = tracer_for("publish_answer")
app = APIGatewayHttpResolver(cors=CORSConfig())


@app.post("/sessions/<session_id>/answers")
@tracer.capture_method
def post_answer(session_id: str) -> Response[str]:
    who = caller(app)
    try:
        event = AnswerEvent.model_validate(app.current_event.json_body or {})
    except (ValidationError, ValueError) as exc:
        raise BadRequestError(f"invalid answer: {str(exc).splitlines()[-1].strip()}") from None
    if event.session_id != session_id:
        raise BadRequestError("session_id in the body does not match the path")
    with http_errors():
        who.require_student(event.student_id)
    answer_stream().publish(event)
    metrics.add_metric(name="AnswersPublished", unit=MetricUnit.Count, value=1)
    return Response(202, "application/json", json.dumps({"event_id": str(event.event_id)}))


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
