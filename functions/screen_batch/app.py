"""ScreenBatch: the Pipe's enrichment. Passes on the records that are well-formed answer events,
grouped by session; rejects and quarantines the others before they can reach (and fail) the
state machine."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import adapters, powertools
from irtcat.domain.steps import by_session, screen_batch

logger, metrics = powertools("screen_batch")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: list[Any], context: LambdaContext) -> list[dict[str, Any]]:
    if not isinstance(event, list):
        raise TypeError(f"expected a Pipe batch (a JSON array of records), got {type(event).__name__}")
    a = adapters()
    passed = screen_batch(event, a.history, a.quarantine)
    quarantined = len(event) - len(passed)
    if quarantined:
        metrics.add_metric(name="Answers_quarantined_at_screen", unit=MetricUnit.Count, value=quarantined)
        logger.warning("records quarantined before the state machine", extra={"quarantined": quarantined,
                                                                               "batch": len(event)})
    return by_session(passed)
