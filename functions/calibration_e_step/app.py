"""CalibrationEStep: the expected counts of one shard (a Distributed Map worker).

One state of ``statemachines/calibration.asl.json`` (``irtcat.domain.calibration_job``): parse
the state's input, run the step, return the job for the next state."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from irtcat.adapters.wiring import calibration_stores, powertools
from irtcat.domain import calibration_job as job_steps
from irtcat.domain.calibration_job import ShardTask

logger, metrics = powertools("calibration_e_step")
# a warm container keeps the shards it has read (they never change within a run)
_shards: dict[str, Any] = {}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = ShardTask.model_validate(event)
    if len(_shards) > 8:
        _shards.clear()
    return {"stats": job_steps.e_step(task, calibration_stores().work, _shards)}
