"""CommitStep: the conditional session write (and student profile), then the history."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.runtime import adapters, powertools
from irtcat.domain.steps import Step, commit_step

logger, tracer, metrics = powertools("commit_step")


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
@event_parser(model=Step)
def handler(event: Step, context: LambdaContext) -> dict[str, Any]:
    a = adapters()
    out = commit_step(event, a.sessions, a.history)
    metrics.add_metric(name="StepsCommitted", unit=MetricUnit.Count, value=1)
    return out
