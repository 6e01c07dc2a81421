"""GET /sessions/{session_id}: the next item with its content (never its key), or the final
result (the session's student or a teacher only). A read after the time limit finishes the session."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.http import api, caller, path_id
from irtcat.adapters.wiring import adapters, powertools
from irtcat.adapters.wiring import tracer as tracer_for
from irtcat.domain.api import link_media
from irtcat.domain.steps import get_session

logger, metrics = powertools("get_session")
tracer = tracer_for("get_session")
app = api()


@app.get("/sessions/<session_id>")
@tracer.capture_method
def read_session(session_id: str) -> Response[str]:
    who = caller(app)
    a = adapters()
    view = get_session(path_id("session_id", session_id), a.sessions, a.banks, a.history,
                       authorize=who.require_reader)
    metrics.add_metric(name="SessionReads", unit=MetricUnit.Count, value=1)
    return Response(200, "application/json", link_media(view, a.media.url).model_dump_json())


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
