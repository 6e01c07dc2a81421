"""CalibrationPublish: publish the new version and move the bank's current pointer.

One state of ``statemachines/calibration.asl.json`` (``irtcat.domain.calibration_job``): parse
the state's input, run the step, return the job for the next state."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import calibration_stores, powertools
from irtcat.domain import calibration_job as job_steps
from irtcat.domain.calibration_job import CalibrationJob

logger, metrics = powertools("calibration_publish")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    s = calibration_stores()
    job = job_steps.publish(CalibrationJob.model_validate(event), s.banks, s.work)
    logger.info("published", extra={"version": job.new_version, "promoted": job.promoted})
    return job.model_dump(mode="json")
