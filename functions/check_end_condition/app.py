"""CheckEndCondition: which of the test's stopping rules fires, if any."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import adapters, powertools
from irtcat.domain.steps import Step, check_end_condition

logger, metrics = powertools("check_end_condition")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = Step.model_validate(event)
    out = check_end_condition(step, adapters().banks)
    metrics.add_metric(name="StopRuleFired" if out.stop_reason else "TestContinues",
                       unit=MetricUnit.Count, value=1)
    return out.model_dump(mode="json")
