"""SelectNextItem: the test's selection rule, exposure control and content balance."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.runtime import adapters, powertools
from irtcat.domain.steps import Step, select_next_item

logger, tracer, metrics = powertools("select_next_item")


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
@event_parser(model=Step)
def handler(event: Step, context: LambdaContext) -> dict[str, Any]:
    out = select_next_item(event, adapters().banks)
    metrics.add_metric(name="ItemsSelected", unit=MetricUnit.Count, value=1)
    return out.model_dump(mode="json")
