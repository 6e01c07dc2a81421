"""FinishSession: close the session with the stopping rule that fired."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.runtime import powertools
from irtcat.domain.steps import Step, finish_session

logger, tracer, metrics = powertools("finish_session")


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
@event_parser(model=Step)
def handler(event: Step, context: LambdaContext) -> dict[str, Any]:
    out = finish_session(event)
    metrics.add_metric(name="SessionsFinished", unit=MetricUnit.Count, value=1)
    return out.model_dump(mode="json")
