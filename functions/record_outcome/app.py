"""RecordOutcome: acknowledge a duplicate; record a rejection and quarantine its raw event."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import adapters, powertools
from irtcat.domain.steps import Step, record_outcome

logger, metrics = powertools("record_outcome")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = Step.model_validate(event)
    a = adapters()
    out = record_outcome(step, a.history, a.quarantine)
    metrics.add_metric(name=f"Answers_{out['outcome']}_recorded", unit=MetricUnit.Count, value=1)
    if out["outcome"] == "rejected":
        logger.warning("answer rejected", extra=out)
    return out
