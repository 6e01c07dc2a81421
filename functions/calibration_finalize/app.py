"""CalibrationFinalize: the candidate bank version, its report and the quality gates.

One state of ``statemachines/calibration.asl.json`` (``irtcat.domain.calibration_job``): parse
the state's input, run the step, return the job for the next state."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import calibration_stores, powertools
from irtcat.domain import calibration_job as job_steps
from irtcat.domain.calibration_job import CalibrationJob

logger, metrics = powertools("calibration_finalize")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    s = calibration_stores()
    job = job_steps.finalize(CalibrationJob.model_validate(event), s.banks, s.work)
    metrics.add_metric(name="CalibrationPromoted", unit=MetricUnit.Count, value=len(job.promoted))
    if not job.gates_passed:
        logger.warning("quality gates failed", extra={"failures": job.gate_failures})
    return job.model_dump(mode="json")
