"""UpdateTheta: validate, de-duplicate and score one answer; re-estimate theta."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import adapters, powertools
from irtcat.domain.steps import Step, update_theta

logger, metrics = powertools("update_theta")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = Step.model_validate(event)
    a = adapters()
    out = update_theta(step, a.sessions, a.banks)
    metrics.add_metric(name=f"Answers_{out.outcome}", unit=MetricUnit.Count, value=1)
    if out.outcome != "applied":
        logger.info("answer not applied", extra={"outcome": out.outcome, "reason": out.reason})
    return out.model_dump(mode="json")
