"""SelectNextItem: the test's selection rule, exposure control and content balance."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import adapters, powertools
from irtcat.domain.steps import Step, select_next_item

logger, metrics = powertools("select_next_item")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = Step.model_validate(event)
    out = select_next_item(step, adapters().banks)
    metrics.add_metric(name="ItemsSelected", unit=MetricUnit.Count, value=1)
    return out.model_dump(mode="json")
