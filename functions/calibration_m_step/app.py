"""CalibrationMStep: sum the shards' counts, take the M-step, test convergence.

One state of ``statemachines/calibration.asl.json`` (``irtcat.domain.calibration_job``): parse
the state's input, run the step, return the job for the next state."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import calibration_stores, powertools
from irtcat.domain import calibration_job as job_steps
from irtcat.domain.calibration_job import CalibrationJob

logger, metrics = powertools("calibration_m_step")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = job_steps.m_step(CalibrationJob.model_validate(event), calibration_stores().work)
    logger.info("EM cycle", extra={"iteration": job.iteration, "change": job.change, "phase": job.phase,
                                   "objective": job.trace[-1] if job.trace else None})
    return job.model_dump(mode="json")
