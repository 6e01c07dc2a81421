"""Category probabilities and Fisher information for partial-credit items.

An item scored in categories 0..m has a slope ``a`` and m thresholds ``b_1..b_m``; items of a
bank with fewer categories than the widest are padded with NaN thresholds, and their missing
categories have probability 0. ``D`` is the metric's scaling constant, as for the logistic
models (:mod:`.model`).

* Graded response model (Samejima 1969): the boundary curves
  P*_k(theta) = 1 / (1 + exp(-D a (theta - b_k))) for k = 1..m, with P*_0 = 1 and P*_{m+1} = 0,
  give P_k = P*_k - P*_{k+1}; the thresholds must increase.
* Generalized partial credit model (Muraki 1992):
  P_k(theta) = exp(sum_{v<=k} D a (theta - b_v)) / sum_{c=0..m} exp(sum_{v<=c} D a (theta - b_v)),
  the empty sum being 0; with a = 1 it is Masters' partial credit model. Step parameters need
  not be ordered.

Item information is I(theta) = sum_k P_k'(theta)^2 / P_k(theta) (Samejima 1969; Dodd, De Ayala &
Koch 1995). For the GPCM this equals (D a)^2 Var(k | theta) (Muraki 1993), which is how it is
computed here. Every function takes ``theta`` of shape (t,) and returns arrays whose first axis
is theta, then items, then categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .model import D_LOGISTIC, EPS, FloatArray, _logistic

PolytomousModel = Literal["GRM", "GPCM"]
GRM, GPCM = 1, 2
MODEL_CODES: dict[str, int] = {"GRM": GRM, "GPCM": GPCM}


@dataclass(frozen=True)
class PolytomousItems:
    """Struct-of-arrays view of partial-credit items: ``model`` per item (GRM or GPCM code),
    slope ``a`` and thresholds (items, widest m), NaN-padded."""

    model: np.ndarray
    a: FloatArray
    thresholds: FloatArray
    scale: float = D_LOGISTIC

    @classmethod
    def build(cls, models: list[str], a: ArrayLike, thresholds: list[list[float]],
              scale: float = D_LOGISTIC) -> PolytomousItems:
        """Items from per-item model names, slopes and threshold lists (checked)."""
        if not (len(models) == len(thresholds) == np.size(a)):
            raise ValueError("models, a and thresholds need one entry per item")
        width = max((len(t) for t in thresholds), default=0)
        table = np.full((len(thresholds), width), np.nan)
        for j, t in enumerate(thresholds):
            table[j, :len(t)] = t
        try:
            codes = np.array([MODEL_CODES[m] for m in models], dtype=np.int8)
        except KeyError as exc:
            raise ValueError(f"unknown partial-credit model {exc.args[0]!r} (known: GRM, GPCM)") from None
        items = cls(codes, np.asarray(a, dtype=np.float64).reshape(-1), table, float(scale))
        items.validate()
        return items

    def validate(self) -> None:
        """Raise ``ValueError`` naming the item when a parameter is outside its domain."""
        for j in range(len(self)):
            t = self.thresholds[j]
            given = t[~np.isnan(t)]
            if given.size == 0 or np.isnan(t[:given.size]).any():
                raise ValueError(f"item {j}: needs 1 or more thresholds, without gaps")
            if not np.all(np.isfinite(given)) or not np.isfinite(self.a[j]) or self.a[j] <= 0:
                raise ValueError(f"item {j}: needs a > 0 and finite thresholds")
            if self.model[j] == GRM and np.any(np.diff(given) <= 0):
                raise ValueError(f"item {j}: graded response thresholds must increase, got {given.tolist()}")
        if self.scale <= 0:
            raise ValueError("scaling constant D must be > 0")

    def __len__(self) -> int:
        return int(self.a.shape[0])

    @property
    def categories(self) -> np.ndarray:
        """Number of categories (m + 1) of each item."""
        out: np.ndarray = 1 + np.sum(~np.isnan(self.thresholds), axis=1)
        return out

    def subset(self, index: ArrayLike) -> PolytomousItems:
        idx = np.asarray(index, dtype=np.intp)
        return PolytomousItems(self.model[idx], self.a[idx], self.thresholds[idx], self.scale)


def category_probabilities(theta: ArrayLike, items: PolytomousItems) -> FloatArray:
    """P(X = k | theta) for every theta, item and category: shape (t, items, m_max + 1); the
    categories an item does not have are 0."""
    return _derivatives(np.atleast_1d(np.asarray(theta, dtype=np.float64))[:, None, None], items, slopes=False)[0]


def category_derivatives(theta: ArrayLike, items: PolytomousItems) -> tuple[FloatArray, FloatArray]:
    """``(P, dP/dtheta)``, both of shape (t, items, m_max + 1).

    GRM: P_k' = P*_k' - P*_{k+1}' with P*' = D a P* (1 - P*). GPCM: P_k' = D a P_k (k - E[k])."""
    return _derivatives(np.atleast_1d(np.asarray(theta, dtype=np.float64))[:, None, None], items)


def _derivatives(t: FloatArray, items: PolytomousItems, slopes: bool = True) -> tuple[FloatArray, FloatArray]:
    """:func:`category_derivatives` for ``t`` already shaped to broadcast against (t, items, 1);
    without ``slopes`` the derivatives are left at 0 (the probabilities alone cost less)."""
    da = (items.scale * items.a)[None, :, None]
    b = items.thresholds[None, :, :]
    n, width = items.thresholds.shape
    p = np.zeros((t.shape[0], n, width + 1))
    dp = np.zeros_like(p)
    grm = items.model == GRM

    def at(mask: np.ndarray) -> FloatArray:  # theta for the masked items (one per item, or shared)
        out: FloatArray = t[:, mask] if t.shape[1] > 1 else t
        return out

    if grm.any():
        # a missing threshold is an unreachable boundary: P* = 0 above the item's last category
        star = np.where(np.isnan(b[:, grm]), 0.0, _logistic(da[:, grm] * (at(grm) - np.nan_to_num(b[:, grm]))))
        ones = np.ones((*star.shape[:2], 1))
        zeros = np.zeros_like(ones)
        upper = np.concatenate([ones, star], axis=2)
        lower = np.concatenate([star, zeros], axis=2)
        p[:, grm] = upper - lower
        if slopes:
            dstar = da[:, grm] * star * (1.0 - star)
            dp[:, grm] = np.concatenate([zeros, dstar], axis=2) - np.concatenate([dstar, zeros], axis=2)
    gpcm = ~grm
    if gpcm.any():
        steps = np.where(np.isnan(b[:, gpcm]), -np.inf, da[:, gpcm] * (at(gpcm) - np.nan_to_num(b[:, gpcm])))
        z = np.concatenate([np.zeros((*steps.shape[:2], 1)), np.cumsum(steps, axis=2)], axis=2)
        z -= z.max(axis=2, keepdims=True)
        e = np.exp(z)
        pk = e / e.sum(axis=2, keepdims=True)
        p[:, gpcm] = pk
        if slopes:
            k = np.arange(width + 1)[None, None, :]
            mean = np.sum(k * pk, axis=2, keepdims=True)
            dp[:, gpcm] = da[:, gpcm] * pk * (k - mean)
    return p, dp


def information(theta: ArrayLike, items: PolytomousItems) -> FloatArray:
    """Fisher information of each item at each theta, shape (t, items):
    I = sum_k P_k'^2 / P_k over the item's categories."""
    p, dp = category_derivatives(theta, items)
    valid = np.arange(p.shape[2])[None, None, :] < items.categories[None, :, None]
    out: FloatArray = np.sum(np.where(valid, dp**2 / np.maximum(p, EPS), 0.0), axis=2)
    return out


def log_likelihood_table(items: PolytomousItems, nodes: FloatArray) -> FloatArray:
    """log P(X = k | node) for every item, category and node: shape (items, m_max + 1, nodes);
    a category an item does not have is -inf (a response in it is refused before it gets here)."""
    p = category_probabilities(nodes, items)  # (nodes, items, K)
    valid = np.arange(p.shape[2])[None, None, :] < items.categories[None, :, None]
    with np.errstate(divide="ignore"):
        logp = np.where(valid, np.log(np.maximum(p, EPS)), -np.inf)
    out: FloatArray = np.transpose(logp, (1, 2, 0))
    return out


def draw_responses(theta: ArrayLike, items: PolytomousItems, rng: np.random.Generator) -> np.ndarray:
    """One category per (theta, item) pair, drawn from the model at that theta (theta and items
    of the same length: simulee j answers item j)."""
    t = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    if t.shape[0] != len(items):
        raise ValueError("draw_responses pairs theta j with item j: give one theta per item")
    p = _derivatives(t[None, :, None], items)[0][0]  # (n, K)
    cumulative = np.cumsum(p, axis=1)
    u = rng.random((t.shape[0], 1))
    out: np.ndarray = np.minimum(np.sum(cumulative < u, axis=1), items.categories - 1)
    return out


def paired_derivatives(theta: ArrayLike, items: PolytomousItems) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(P, P', P'')`` of item j at theta j (one theta per item), each (items, m_max + 1).

    GRM: P*'' = (D a)^2 P* (1 - P*) (1 - 2 P*), P_k'' = P*_k'' - P*_{k+1}''.
    GPCM: with E = sum_k k P_k and V its variance, P_k' = D a P_k (k - E) and
    P_k'' = D a (P_k' (k - E) - P_k D a V)."""
    t = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    if t.shape[0] != len(items):
        raise ValueError("paired_derivatives pairs theta j with item j: give one theta per item")
    p, dp = (x[0] for x in _derivatives(t[None, :, None], items))
    d2p = np.zeros_like(p)
    da = (items.scale * items.a)[:, None]
    grm = items.model == GRM
    if grm.any():
        b = items.thresholds[grm]
        star = np.where(np.isnan(b), 0.0, _logistic(da[grm] * (t[grm, None] - np.nan_to_num(b))))
        d2star = da[grm] ** 2 * star * (1.0 - star) * (1.0 - 2.0 * star)
        zeros = np.zeros((star.shape[0], 1))
        d2p[grm] = np.concatenate([zeros, d2star], axis=1) - np.concatenate([d2star, zeros], axis=1)
    gpcm = ~grm
    if gpcm.any():
        k = np.arange(p.shape[1])[None, :]
        pk, dpk = p[gpcm], dp[gpcm]
        mean = np.sum(k * pk, axis=1, keepdims=True)
        var = np.sum((k - mean) ** 2 * pk, axis=1, keepdims=True)
        d2p[gpcm] = da[gpcm] * (dpk * (k - mean) - pk * da[gpcm] * var)
    return p, dp, d2p
