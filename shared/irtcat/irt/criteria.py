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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .model import FloatArray, ItemParameters, information, prob
from .polytomous import PolytomousItems, category_probabilities

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


def kl_information_partial_credit(theta: FloatArray, n_answered: np.ndarray, items: PolytomousItems) -> FloatArray:
    """Chang & Ying's KL index for partial-credit items, shape ``(n, items)``: the same window
    and trapezoid rule, with KL(t0 || t) = sum_k P_k(t0) log(P_k(t0) / P_k(t)) over categories."""
    delta = KL_Z / np.sqrt(np.maximum(n_answered, 1))
    p0 = category_probabilities(theta, items)[:, None]  # (n, 1, i, K)
    grid = theta[:, None] + delta[:, None] * _KL_POINTS[None, :]  # (n, g)
    p = category_probabilities(grid.ravel(), items).reshape(*grid.shape, len(items), -1)  # (n, g, i, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p0 > 0, p0 * (np.log(np.maximum(p0, 1e-300)) - np.log(np.maximum(p, 1e-300))), 0.0)
    kl = terms.sum(axis=-1)  # (n, g, i)
    out: FloatArray = np.trapezoid(kl, dx=1.0, axis=1) * (2.0 * delta[:, None] / (_KL_POINTS.size - 1))
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


def peak_information(items: ItemParameters) -> FloatArray:
    """Each item's maximum Fisher information over theta (3PL and below, d = 1).

    I_max = (D a)^2 / (8 (1 - c)^2) * (1 - 20 c - 8 c^2 + (1 + 8 c)^(3/2))  (Lord 1980, eq. 10-6).
    """
    da = items.scale * items.a.astype(np.float64)
    c = items.c.astype(np.float64)
    out: FloatArray = da * da / (8 * (1 - c) ** 2) * (1 - 20 * c - 8 * c * c + (1 + 8 * c) ** 1.5)
    return out


@dataclass(frozen=True)
class PeakIndex:
    """A bank's items in decreasing order of peak information, with the constants that the
    information formula needs precomputed (float32), so a chunk is a slice, not a gather."""

    order: np.ndarray
    peaks: FloatArray
    da: np.ndarray
    b: np.ndarray
    c: np.ndarray
    span: np.ndarray
    k2: np.ndarray

    @classmethod
    def build(cls, items: ItemParameters) -> PeakIndex:
        peaks = peak_information(items)
        order = np.argsort(-peaks, kind="stable")
        da = (items.scale * items.a[order]).astype(np.float32)
        span = (items.d[order] - items.c[order]).astype(np.float32)
        return cls(order, peaks[order], da, items.b[order].astype(np.float32),
                   items.c[order].astype(np.float32), span, (da * span) ** 2)

    def information(self, theta: float, lo: int, hi: int) -> np.ndarray:
        """Fisher information of items ``lo:hi`` (in peak order) at theta, float32."""
        z = self.da[lo:hi] * np.float32(-theta) + self.da[lo:hi] * self.b[lo:hi]  # -D a (theta - b)
        np.clip(z, -40.0, 40.0, out=z)
        np.exp(z, out=z)
        z += 1
        np.reciprocal(z, out=z)  # s
        p = self.span[lo:hi] * z
        p += self.c[lo:hi]
        z *= 1 - z
        z *= z
        z *= self.k2[lo:hi]
        p *= 1 - p
        np.maximum(p, np.float32(1e-9), out=p)
        z /= p
        out: np.ndarray = z
        return out


def top_information(
    theta: float,
    index: PeakIndex,
    eligible: Callable[[np.ndarray], np.ndarray],
    k: int,
    chunk: int = 512,
) -> np.ndarray:
    """The ``k`` most informative eligible items at ``theta``, best first (-1 padded).

    Exact, without scoring the whole bank: items are visited in decreasing order of their peak
    information and the scan stops once the k-th best information found beats every remaining
    peak. ``eligible(idx)`` says which of the bank items ``idx`` may be chosen. The
    one-examinee path for large banks.
    """
    n = index.order.size
    best_idx = np.empty(0, dtype=np.int64)
    best_val = np.empty(0, dtype=np.float32)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        val = index.information(theta, lo, hi)
        val[~eligible(index.order[lo:hi])] = -np.inf
        if k == 1:
            j = int(np.argmax(val))
            if best_val.size == 0 or val[j] > best_val[0]:
                best_idx, best_val = np.array([lo + j]), val[j:j + 1]
        else:
            best_idx = np.concatenate([best_idx, np.arange(lo, hi)])
            best_val = np.concatenate([best_val, val])
            keep = np.argpartition(-best_val, k - 1)[:k]
            best_idx, best_val = best_idx[keep], best_val[keep]
        if hi >= n:
            break
        kth = float(np.min(best_val)) if best_val.size >= k else -np.inf
        if kth > index.peaks[hi] * (1 + 1e-5):  # nothing further down can enter the top k
            break
    ranked = np.argsort(-best_val, kind="stable")
    valid = np.isfinite(best_val[ranked])
    chosen = index.order[best_idx[ranked][valid]][:k]
    out = np.full(k, -1, dtype=np.int64)
    out[: chosen.size] = chosen
    return out


def pick_from_top(top: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per row, a uniform choice among the valid (>= 0) entries of ``top`` (-1 if none)."""
    ok = top >= 0
    if top.shape[1] == 1:
        return top[:, 0]
    noise = np.where(ok, rng.random(top.shape), -1.0)
    choice = top[np.arange(top.shape[0]), noise.argmax(axis=1)]
    return np.where(ok.any(axis=1), choice, -1)


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
        top = np.where(np.take_along_axis(finite, top, axis=1), top, -1)
        choice = pick_from_top(top, rng)
    return np.where(has_any, choice, -1)
