"""CommitStep: the conditional session write, with the step's history records as its outbox
(and the student's profile when the session finished)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import adapters, powertools
from irtcat.domain.steps import Step, commit_step

logger, metrics = powertools("commit_step")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = Step.model_validate(event)
    a = adapters()
    out = commit_step(step, a.sessions)
    metrics.add_metric(name="StepsCommitted", unit=MetricUnit.Count, value=1)
    return out
