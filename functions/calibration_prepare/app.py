"""CalibrationPrepare: the history since the last calibration, sharded by session (the job's first state).

One state of ``statemachines/calibration.asl.json`` (``irtcat.domain.calibration_job``): parse
the state's input, run the step, return the job for the next state."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import calibration_stores, powertools
from irtcat.domain import calibration_job as job_steps
from irtcat.domain.calibration_job import CalibrationRequest

logger, metrics = powertools("calibration_prepare")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CalibrationRequest.model_validate(event.get("request", event))
    s = calibration_stores()
    run_id = str(event.get("run_id") or context.aws_request_id)
    job = job_steps.prepare(request, s.banks, s.history, s.work, run_id=run_id)
    logger.info("prepared", extra={"responses": job.n_responses, "sessions": job.n_sessions, "shards": job.n_shards,
                                   "phase": job.phase})
    metrics.add_metric(name="CalibrationResponses", unit=MetricUnit.Count, value=job.n_responses)
    return job.model_dump(mode="json")
