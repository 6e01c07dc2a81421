"""FinishSession: close the session with the stopping rule that fired, and judge whether it was
answered in earnest (person fit, response-time effort)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import adapters, powertools
from irtcat.domain.steps import Step, finish_session

logger, metrics = powertools("finish_session")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = Step.model_validate(event)
    out = finish_session(step, adapters().banks)
    metrics.add_metric(name="SessionsFinished", unit=MetricUnit.Count, value=1)
    if out.session is not None and out.session.flags:
        metrics.add_metric(name="SessionsFlagged", unit=MetricUnit.Count, value=1)
    return out.model_dump(mode="json")
