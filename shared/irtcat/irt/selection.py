"""Item selection criteria, vectorised over examinees (rows) and bank items (columns).

* Maximum Fisher information (Lord 1980): argmax_i I_i(theta_hat).
* Global Kullback-Leibler information (Chang & Ying 1996):
  KL_i(theta_hat) = integral over [theta_hat - delta_n, theta_hat + delta_n] of
  P_i(t0) log(P_i(t0)/P_i(t)) + Q_i(t0) log(Q_i(t0)/Q_i(t)) dt, t0 = theta_hat,
  delta_n = z / sqrt(n) with n the number of items answered (at least 1), z = 3.
* a-stratified with b-blocking (Chang, Qian & Ying 2001): operational items are sorted by b,
  cut into blocks of K, and within each block the j-th smallest a goes to stratum j; stage
  s = floor(n K / max_items) draws from stratum s the item with b closest to theta_hat.
* Randomesque-k (Kingsbury & Zara 1989): a uniform pick among the k best by the criterion.

Every function returns a criterion matrix where ineligible items hold -inf.
"""

from __future__ import annotations

import numpy as np

from .model import FloatArray, ItemParameters, information, prob

KL_Z = 3.0
_KL_POINTS = np.linspace(-1.0, 1.0, 9)


def max_information(theta: FloatArray, items: ItemParameters) -> FloatArray:
    """Fisher information of every item at each examinee's theta: ``(n, items)``."""
    return information(theta[:, None], items)


def kl_information(theta: FloatArray, n_answered: np.ndarray, items: ItemParameters) -> FloatArray:
    """Chang & Ying's global KL index (trapezoid rule on 9 points), shape ``(n, items)``."""
    delta = KL_Z / np.sqrt(np.maximum(n_answered, 1))
    p0 = prob(theta[:, None], items)[..., None]  # (n, i, 1)
    grid = theta[:, None] + delta[:, None] * _KL_POINTS[None, :]  # (n, g)
    p = prob(grid[:, None, :], _column(items))  # (n, i, g)
    kl = p0 * np.log(p0 / p) + (1 - p0) * np.log((1 - p0) / (1 - p))
    out: FloatArray = np.trapezoid(kl, dx=1.0, axis=-1) * (2.0 * delta[:, None] / (_KL_POINTS.size - 1))
    return out


def _column(items: ItemParameters) -> ItemParameters:
    return ItemParameters(items.a[:, None], items.b[:, None], items.c[:, None], items.d[:, None], items.scale)


def b_blocked_strata(a: FloatArray, b: FloatArray, eligible: np.ndarray, n_strata: int) -> np.ndarray:
    """Stratum (0 = lowest a) of each eligible item by a-stratification with b-blocking; -1 else."""
    strata = np.full(a.shape[0], -1, dtype=np.int64)
    idx = np.flatnonzero(eligible)
    if idx.size == 0:
        return strata
    k = max(1, min(n_strata, idx.size))
    by_b = idx[np.argsort(b[idx], kind="stable")]
    for start in range(0, by_b.size, k):
        block = by_b[start:start + k]
        by_a = block[np.argsort(a[block], kind="stable")]
        strata[by_a] = np.arange(by_a.size)
    return strata


def stratified_closeness(theta: FloatArray, b: FloatArray) -> FloatArray:
    """-|b - theta|: the a-stratified criterion inside the current stratum."""
    out: FloatArray = -np.abs(b[None, :] - theta[:, None])
    return out


def pick(criterion: FloatArray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Per row, a uniform choice among the ``k`` best finite entries (argmax when k == 1).

    Rows with no finite entry return -1.
    """
    n, m = criterion.shape
    finite = np.isfinite(criterion)
    has_any = finite.any(axis=1)
    if k <= 1 or m == 1:
        choice = criterion.argmax(axis=1)
    else:
        # k passes of argmax beat argpartition for the small k that randomesque uses
        work = criterion.copy()
        rows = np.arange(n)
        top = np.empty((n, min(k, m)), dtype=np.int64)
        for j in range(top.shape[1]):
            top[:, j] = work.argmax(axis=1)
            work[rows, top[:, j]] = -np.inf
        top_ok = np.take_along_axis(finite, top, axis=1)
        noise = np.where(top_ok, rng.random(top.shape), -1.0)
        choice = top[rows, noise.argmax(axis=1)]
    return np.where(has_any, choice, -1)
