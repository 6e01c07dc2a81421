"""The calibration job's steps (``irtcat.domain.calibration_job``), one handler per state of
``statemachines/calibration.asl.json``. Each handler parses the state's input, runs the step
and returns the job for the next state."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import calibration_stores, powertools
from irtcat.domain import calibration_job as job_steps
from irtcat.domain.calibration_job import CalibrationJob, CalibrationRequest, ShardTask

logger, metrics = powertools("calibration")
# a warm E-step container keeps the shards it has read (they never change within a run)
_shards: dict[str, Any] = {}


@metrics.log_metrics
@logger.inject_lambda_context
def prepare(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CalibrationRequest.model_validate(event.get("request", event))
    s = calibration_stores()
    job = job_steps.prepare(request, s.banks, s.history, s.work, run_id=str(event.get("run_id") or context.aws_request_id))
    logger.info("prepared", extra={"responses": job.n_responses, "sessions": job.n_sessions, "shards": job.n_shards,
                                   "phase": job.phase})
    metrics.add_metric(name="CalibrationResponses", unit=MetricUnit.Count, value=job.n_responses)
    return job.model_dump(mode="json")


@logger.inject_lambda_context
def e_step(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = ShardTask.model_validate(event)
    if len(_shards) > 8:
        _shards.clear()
    return {"stats": job_steps.e_step(task, calibration_stores().work, _shards)}


@logger.inject_lambda_context
def m_step(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = job_steps.m_step(CalibrationJob.model_validate(event), calibration_stores().work)
    logger.info("EM cycle", extra={"iteration": job.iteration, "change": job.change, "phase": job.phase,
                                   "objective": job.trace[-1] if job.trace else None})
    return job.model_dump(mode="json")


@metrics.log_metrics
@logger.inject_lambda_context
def finalize(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    s = calibration_stores()
    job = job_steps.finalize(CalibrationJob.model_validate(event), s.banks, s.work)
    metrics.add_metric(name="CalibrationPromoted", unit=MetricUnit.Count, value=len(job.promoted))
    if not job.gates_passed:
        logger.warning("quality gates failed", extra={"failures": job.gate_failures})
    return job.model_dump(mode="json")


@logger.inject_lambda_context
def publish(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    s = calibration_stores()
    job = job_steps.publish(CalibrationJob.model_validate(event), s.banks, s.work)
    logger.info("published", extra={"version": job.new_version, "promoted": job.promoted})
    return job.model_dump(mode="json")
