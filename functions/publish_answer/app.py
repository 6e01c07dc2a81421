"""POST /sessions/{session_id}/answers: check the answer at the door, then put it on the
Kinesis stream (202).

For clients that cannot hold AWS credentials: a signed-in student may answer as themselves only,
in a session of their own that is active, within its time limit and serving that ``seq`` and
item, with a choice the item can take (one read; 400/403/404/409 with the reason otherwise).
The pipeline checks again. The tablet chooses the ``event_id`` and reuses it when it retries a
failed submit, so a retry is acknowledged (here, or downstream as a duplicate) and counted once.
"""

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.http import BadInput, api, caller, json_body, path_id
from irtcat.adapters.wiring import adapters, answer_stream, powertools
from irtcat.adapters.wiring import tracer as tracer_for
from irtcat.domain.events import AnswerEvent, contract_problem
from irtcat.domain.steps import admit_answer, event_error
from pydantic import ValidationError

logger, metrics = powertools("publish_answer")
tracer = tracer_for("publish_answer")
app = api()


@app.post("/sessions/<session_id>/answers")
@tracer.capture_method
def post_answer(session_id: str) -> Response[str]:
    who = caller(app)
    path_id("session_id", session_id)
    body = json_body(app, "answer")
    problem = contract_problem(body)
    if problem:
        raise BadInput(f"invalid answer: {problem}")
    try:
        event = AnswerEvent.model_validate(body)
    except ValidationError as exc:
        raise BadInput(f"invalid answer: {event_error(exc)}") from None
    if event.session_id != session_id:
        raise BadInput("session_id in the body does not match the path")
    who.require_student(event.student_id)
    a = adapters()
    if admit_answer(event, a.sessions, a.banks):
        answer_stream().publish(event)
        metrics.add_metric(name="AnswersPublished", unit=MetricUnit.Count, value=1)
    return Response(202, "application/json", json.dumps({"event_id": str(event.event_id)}))


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
