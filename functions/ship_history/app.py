"""ShipHistory: the history records each session write carries (its outbox), from the table's
stream into the history (Firehose). A failure fails the batch, and the stream retries it."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.aws import outbox_of
from irtcat.adapters.wiring import adapters, powertools
from irtcat.domain.steps import ship_history

logger, metrics = powertools("ship_history")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records")
    if not isinstance(records, list):
        raise TypeError("expected a DynamoDB stream batch ({'Records': [...]})")
    outboxes = [o for r in records if (o := outbox_of(r.get("dynamodb", {}).get("NewImage", {}))) is not None]
    shipped = ship_history(outboxes, adapters().history)
    metrics.add_metric(name="HistoryRecordsShipped", unit=MetricUnit.Count, value=shipped)
    return {"shipped": shipped}
