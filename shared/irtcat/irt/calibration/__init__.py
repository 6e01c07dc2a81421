"""Item calibration by marginal maximum likelihood: Bock-Aitkin EM on sparse (CAT) data, one
engine for every item family and every way of running it.

Data are long format (person, item, response) and live in sparse person x item matrices, so
memory grows with the number of responses, never with persons x items.

* :mod:`.data`: responses, quadrature, the posterior over the nodes and the E-step's sufficient
  statistics (which add up over shards of persons);
* :mod:`.priors`: the MAP priors and their defaults;
* :mod:`.right_wrong` and :mod:`.partial_credit`: the item families, each with its response
  function, M-step, log prior, starting values, observed information and fit;
* :mod:`.estep`: the E-step of a run with both families, and the information across them;
* :mod:`.em`: the EM driver (SQUAREM with a monotone safeguard; resumable between E-steps);
* :mod:`.engine`: what a run estimates and the front ends (in process, over shards);
  the managed job (:mod:`irtcat.domain.calibration_job`) runs the same driver one Lambda per step;
* :mod:`.results`: estimates, standard errors and the run's summary.
"""

from .data import (
    A_BOUNDS,
    B_BOUNDS,
    C_BOUNDS,
    CalibModel,
    CategoryData,
    ExpectedCounts,
    ItemEstimates,
    Latent,
    ResponseData,
    StartMethod,
    quadrature,
)
from .em import CalibrationWarning, EMRun, EMSettings
from .engine import JointModel, calibrate, calibrate_mixed, calibrate_polytomous, calibrate_sharded, run_em
from .estep import PartialAnswers, e_step, joint_e_step
from .priors import Priors, priors_from
from .results import JOINT_SE_METHOD, SE_METHOD, CalibrationResult, MixedResult, PolytomousResult
from .right_wrong import observed_information, pairwise_difficulties, starting_values

__all__ = [
    "A_BOUNDS", "B_BOUNDS", "C_BOUNDS", "JOINT_SE_METHOD", "SE_METHOD", "CalibModel", "CalibrationResult",
    "CalibrationWarning", "CategoryData", "EMRun", "EMSettings", "ExpectedCounts", "ItemEstimates", "JointModel",
    "Latent", "MixedResult", "PartialAnswers", "PolytomousResult", "Priors", "ResponseData", "StartMethod",
    "calibrate", "calibrate_mixed", "calibrate_polytomous", "calibrate_sharded", "e_step", "joint_e_step",
    "observed_information", "pairwise_difficulties", "priors_from", "quadrature", "run_em", "starting_values",
]
