"""What a calibration returns: estimates, standard errors from the observed information,
fit, and the run's summary (-2LL, AIC, BIC)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model import D_LOGISTIC, FloatArray
from ..polytomous import MODEL_CODES, PolytomousItems
from .data import CalibModel, ExpectedCounts, ItemEstimates
from .priors import Priors
from .right_wrong import observed_information, param_count, rmsd

SE_METHOD = "observed information (Louis 1982)"
PARTIAL_SE_METHOD = "observed information (Hessian of the marginal log-likelihood; Louis 1982)"
JOINT_SE_METHOD = ("observed information of the joint model: Louis (1982) for the right/wrong items and "
                   "across the families, the Hessian of the marginal log-likelihood for the partial-credit items")


@dataclass
class CalibrationResult:
    """Estimates with standard errors, fit, and the run's summary."""

    model: CalibModel
    a: FloatArray
    b: FloatArray
    c: FloatArray
    se_a: FloatArray
    se_b: FloatArray
    se_c: FloatArray
    n_responses: np.ndarray
    rmsd: FloatArray
    estimated: np.ndarray  # bool: False for fixed items and items left out
    left_out: dict[int, str]
    log_likelihood: float
    iterations: int
    converged: bool
    seconds: float
    n_persons: int
    latent_mean: float
    latent_sd: float
    # log-likelihood + log prior at each accepted point of the EM path (never falls)
    objective_trace: list[float] = field(default_factory=list)
    covariance: FloatArray | None = None  # of the free items' parameters, item-major (b, a, c)[:k]
    priors: Priors = field(default_factory=lambda: Priors())
    se_method: str = SE_METHOD

    @property
    def n_parameters(self) -> int:
        per_item = {"1PL": 1, "2PL": 2, "3PL": 3}[self.model]
        return int(self.estimated.sum()) * per_item

    def summary(self) -> dict[str, object]:
        """-2LL, AIC, BIC (n = persons), iterations, convergence and counts."""
        k = self.n_parameters
        return {
            "model": self.model,
            "iterations": self.iterations,
            "converged": self.converged,
            "log_likelihood": self.log_likelihood,
            "minus_2ll": -2 * self.log_likelihood,
            "aic": -2 * self.log_likelihood + 2 * k,
            "bic": -2 * self.log_likelihood + k * math.log(max(self.n_persons, 1)),
            "n_parameters": k,
            "n_items": int(self.a.size),
            "n_estimated": int(self.estimated.sum()),
            "n_left_out": len(self.left_out),
            "n_persons": self.n_persons,
            "n_responses": int(self.n_responses.sum()),
            "latent_mean": self.latent_mean,
            "latent_sd": self.latent_sd,
            "priors": self.priors.describe(),
            "se_method": self.se_method,
            "seconds": self.seconds,
        }


@dataclass
class PolytomousResult:
    models: list[str]  # per item
    a: FloatArray
    thresholds: FloatArray  # (items, width - 1), NaN-padded
    se_a: FloatArray
    se_thresholds: FloatArray
    rmsd: FloatArray
    n_responses: np.ndarray
    log_likelihood: float
    cycles: int
    converged: bool
    seconds: float
    priors: Priors
    se_method: str = SE_METHOD
    history: list[float] = field(default_factory=list)

    @property
    def model(self) -> str:
        """The items' model, or the models of a mixed run joined by '+'."""
        return "+".join(sorted(set(self.models), key=list(MODEL_CODES).index))

    def items(self, scale: float = D_LOGISTIC) -> PolytomousItems:
        return PolytomousItems(np.array([MODEL_CODES[m] for m in self.models], dtype=np.int8), self.a,
                               self.thresholds, scale)

    def summary(self) -> dict[str, Any]:
        k = int(np.sum(~np.isnan(self.thresholds))) + self.a.size
        n = int(self.n_responses.sum())
        return {"model": self.model, "n_items": int(self.a.size), "n_responses": n,
                "cycles": self.cycles, "converged": self.converged, "seconds": self.seconds,
                "minus_2ll": -2 * self.log_likelihood, "aic": -2 * self.log_likelihood + 2 * k,
                "bic": -2 * self.log_likelihood + k * float(np.log(max(n, 1))),
                "priors": self.priors.describe(), "se_method": self.se_method}



@dataclass
class MixedResult:
    """Each family's estimates (None where the run had no such items) and the joint run's
    marginal log-likelihood, cycles and objective trace."""

    right_wrong: CalibrationResult | None
    partial: PolytomousResult | None
    log_likelihood: float
    cycles: int
    converged: bool
    seconds: float
    history: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """-2LL, AIC and BIC of the joint model (n = responses), counts and the run."""
        k, n, models = 0, 0, list[str]()
        if self.right_wrong is not None:
            k += self.right_wrong.n_parameters
            n += int(self.right_wrong.n_responses.sum())
            models.append(self.right_wrong.model)
        if self.partial is not None:
            k += int(np.sum(~np.isnan(self.partial.thresholds))) + self.partial.a.size
            n += int(self.partial.n_responses.sum())
            models.append(self.partial.model)
        return {"model": "+".join(models), "n_parameters": k, "n_responses": n, "cycles": self.cycles,
                "converged": self.converged, "seconds": self.seconds, "minus_2ll": -2 * self.log_likelihood,
                "aic": -2 * self.log_likelihood + 2 * k,
                "bic": -2 * self.log_likelihood + k * float(np.log(max(n, 1)))}



def covariance_of(info: FloatArray) -> FloatArray:
    """The inverse of the observed information; NaN where it is not positive definite (e.g.
    a parameter at its bound, where the likelihood's maximum is not a stationary point)."""
    size = info.shape[0]
    if size == 0:
        return info
    sym = 0.5 * (info + info.T)
    try:
        np.linalg.cholesky(sym)
        inverse: FloatArray = np.asarray(np.linalg.inv(sym), dtype=np.float64)
        return inverse
    except np.linalg.LinAlgError:
        pass
    values, vectors = np.linalg.eigh(sym)
    good = values > 1e-10 * max(float(np.max(values)), 1e-300)
    cov: FloatArray = (vectors[:, good] / values[good]) @ vectors[:, good].T
    # a direction with no curvature makes the variance of the parameters in it unknown
    null = np.abs(vectors[:, ~good]).max(axis=1) > 1e-6 if (~good).any() else np.zeros(size, bool)
    cov[null, :] = np.nan
    cov[:, null] = np.nan
    return cov




def finish(est: ItemEstimates, final: ExpectedCounts, nodes: FloatArray, model: CalibModel, priors: Priors,
           free: np.ndarray, n_responses: np.ndarray, left_out: dict[int, str], iterations: int,
           converged: bool, seconds: float, latent_mean: float = 0.0, latent_sd: float = 1.0,
           trace: list[float] | None = None, covariance: FloatArray | None = None) -> CalibrationResult:
    """The result at the final estimates: standard errors from the observed information
    (:func:`observed_information`) and RMSD from the statistics of a last E-step at ``est``
    with all items informing the posterior and ``information=(model, free)``. ``covariance``:
    the free items' parameters' covariance from a larger information matrix (a joint run's)."""
    k = param_count(model)
    cov = covariance_of(observed_information(est, final, nodes, model, priors, free)) if covariance is None \
        else covariance
    se = [np.full(est.a.size, np.nan) for _ in range(3)]  # b, a, c
    idx = np.flatnonzero(free)
    variances = np.diagonal(cov).reshape(idx.size, k) if idx.size else np.zeros((0, k))
    for j in range(k):
        se[j][idx] = np.sqrt(np.where(variances[:, j] > 0, variances[:, j], np.nan))
    return CalibrationResult(
        model=model, a=est.a, b=est.b, c=est.c, se_a=se[1], se_b=se[0], se_c=se[2],
        n_responses=n_responses, rmsd=rmsd(est, final.n, final.r, nodes), estimated=free, left_out=left_out,
        log_likelihood=final.log_likelihood, iterations=iterations, converged=converged,
        seconds=seconds, n_persons=final.n_persons,
        latent_mean=latent_mean, latent_sd=latent_sd, objective_trace=trace or [],
        covariance=cov, priors=priors,
    )


