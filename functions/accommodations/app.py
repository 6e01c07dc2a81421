"""GET and PUT /students/{student_id}/accommodations: a student's accommodations per test (the
teachers group only). A session copies them when it starts (docs/items.md)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.http import api, caller, json_body, path_id
from irtcat.adapters.wiring import adapters, powertools
from irtcat.adapters.wiring import tracer as tracer_for
from irtcat.domain.student import AccommodationsRequest, accommodations_view

logger, metrics = powertools("accommodations")
tracer = tracer_for("accommodations")
app = api()


@app.get("/students/<student_id>/accommodations")
@tracer.capture_method
def read_accommodations(student_id: str) -> Response[str]:
    caller(app).require_teacher()
    student_id = path_id("student_id", student_id)
    profile = adapters().students.get(student_id)
    return Response(200, "application/json", accommodations_view(student_id, profile).model_dump_json())


@app.put("/students/<student_id>/accommodations")
@tracer.capture_method
def put_accommodations(student_id: str) -> Response[str]:
    caller(app).require_teacher()
    request = AccommodationsRequest.model_validate(json_body(app, "accommodations"))
    students = adapters().students
    student_id = path_id("student_id", student_id)
    students.set_accommodations(student_id, request.test_id, request.accommodations())
    metrics.add_metric(name="AccommodationsSet", unit=MetricUnit.Count, value=1)
    view = accommodations_view(student_id, students.get(student_id))
    return Response(200, "application/json", view.model_dump_json())


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
