"""UpdateTheta: validate, de-duplicate and score one answer; re-estimate theta."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.runtime import adapters, powertools
from irtcat.domain.steps import Step, update_theta

logger, tracer, metrics = powertools("update_theta")


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
@event_parser(model=Step)
def handler(event: Step, context: LambdaContext) -> dict[str, Any]:
    a = adapters()
    out = update_theta(event, a.sessions, a.banks)
    metrics.add_metric(name=f"Answers_{out.outcome}", unit=MetricUnit.Count, value=1)
    if out.outcome != "applied":
        logger.info("answer not applied", extra={"outcome": out.outcome, "reason": out.reason})
    return out.model_dump(mode="json")
