"""Reliability and conditional precision of adaptive scores.

* **Empirical marginal reliability from sessions.** For EAP (and MAP) estimates, which the prior
  shrinks toward its mean, var(theta_hat) under-states the true-score variance by about the mean
  posterior variance, so

      rho = var(theta_hat) / (var(theta_hat) + mean(SE^2))

  (the reliability of EAP scores, Bock & Mislevy 1982; mirt's ``empirical_rxx``). For ML
  estimates, whose error adds to the true-score variance, rho = 1 - mean(SE^2) / var(theta_hat).
* **Marginal reliability of test information against the prior** (Green et al. 1984; mirt's
  ``marginal_rxx``): with I(theta) the information of a test at theta and the prior N(mu, sigma^2),

      rho = sigma^2 / (sigma^2 + E_prior[1 / I(theta)])

  For an adaptive test the information of the L most informative items at each theta (its bound
  at length L) stands for I(theta).
* **Conditional SEM** by band of the score: the root mean squared SE of the sessions whose
  estimate falls in the band.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from ..model import FloatArray


def empirical_reliability(theta: FloatArray, se: FloatArray, estimator: str = "EAP") -> float:
    """rho from finished sessions' estimates and SEs (module docstring; NaN with fewer than 2)."""
    theta, se = np.asarray(theta, float), np.asarray(se, float)
    if theta.size < 2:
        return float("nan")
    var, err = float(np.var(theta, ddof=1)), float(np.mean(se**2))
    if estimator.upper() == "ML":
        return 1.0 - err / var if var > 0 else float("nan")
    return var / (var + err) if var + err > 0 else float("nan")


def information_reliability(info: FloatArray, theta: FloatArray, mean: float = 0.0, sd: float = 1.0) -> float:
    """rho = sigma^2 / (sigma^2 + E_prior[1 / I]) with ``info`` the test information on the grid
    ``theta`` (module docstring)."""
    w = np.exp(-0.5 * ((np.asarray(theta) - mean) / sd) ** 2)
    w /= w.sum()
    inverse = float(np.sum(w / np.maximum(np.asarray(info, float), 1e-12)))
    return sd**2 / (sd**2 + inverse)


def best_test_information(item_info: FloatArray, length: int) -> FloatArray:
    """Per theta (rows of ``item_info``: theta x items) the information of the ``length`` most
    informative items: an adaptive test's information at its length, at best."""
    info = np.sort(np.asarray(item_info, float), axis=1)[:, ::-1]
    out: FloatArray = info[:, :length].sum(axis=1)
    return out


def conditional_sem(theta: FloatArray, se: FloatArray, edges: FloatArray) -> list[tuple[float, float, int, float]]:
    """(band low, band high, sessions, root mean squared SE) per band of ``edges``."""
    theta, se = np.asarray(theta, float), np.asarray(se, float)
    out = []
    for lo, hi in pairwise(edges):
        inside = (theta >= lo) & (theta < hi)
        n = int(inside.sum())
        out.append((float(lo), float(hi), n, float(np.sqrt(np.mean(se[inside] ** 2))) if n else float("nan")))
    return out
