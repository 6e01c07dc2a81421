"""Linking two calibrations of the same items: the constants A, B with

    theta_old = A theta_new + B,   a_old = a_new / A,   b_old = A b_new + B   (c unchanged)

from the common (anchor) items, by one of four methods (Kolen & Brennan 2014, *Test Equating,
Scaling, and Linking*, ch. 6):

* **mean-sigma** (Marco 1977): A = sd(b_old) / sd(b_new), B = mean(b_old) - A mean(b_new);
* **mean-mean** (Loyd & Hoover 1980): A = mean(a_new) / mean(a_old), B as above;
* **Haebara** (1980): (A, B) minimising sum_q w_q sum_i sum_k (P_ik(theta_q; old) -
  P_ik(theta_q; new on the old scale))^2, every category of every item;
* **Stocking-Lord** (1983): (A, B) minimising sum_q w_q (sum_i E_i(theta_q; old) - sum_i
  E_i(theta_q; new on the old scale))^2, the test characteristic curves.

The characteristic-curve criteria use 41 points on -4..4 with N(0, 1) weights on the old scale,
and start from mean-sigma. Partial-credit items take part with each threshold as a b (moment
methods) and every category (curve methods). Standard errors are by bootstrap over the common
items (``replications`` resamples with replacement; the SD of the resampled constants), which
carries the items' estimation noise and their sampling as anchors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy.optimize import minimize

from ..model import FloatArray
from ..polytomous import PolytomousItems, category_probabilities

Method = Literal["stocking-lord", "haebara", "mean-sigma", "mean-mean"]
METHODS: tuple[Method, ...] = ("stocking-lord", "haebara", "mean-sigma", "mean-mean")
MIN_ANCHORS = 5


@dataclass(frozen=True)
class LinkItem:
    """One item's parameters on the D = 1 logistic metric: ``model`` None for right/wrong (``b``
    one value), "GRM" or "GPCM" (``b`` its thresholds)."""

    a: float
    b: tuple[float, ...]
    c: float = 0.0
    d: float = 1.0
    model: str | None = None

    def on_old_scale(self, big_a: float, big_b: float) -> LinkItem:
        return replace(self, a=self.a / big_a, b=tuple(big_a * x + big_b for x in self.b))


@dataclass(frozen=True)
class Linking:
    """The constants, their bootstrap SEs, the method and the number of common items."""

    method: Method
    A: float
    B: float
    se_A: float
    se_B: float
    anchors: int


@dataclass(frozen=True)
class _Arrays:
    """A set of items as arrays, so that a rescaling and its curves cost a few array operations."""

    a: FloatArray
    b: FloatArray
    c: FloatArray
    d: FloatArray
    poly: PolytomousItems | None

    @classmethod
    def of(cls, items: Sequence[LinkItem]) -> _Arrays:
        rw = [it for it in items if it.model is None]
        pc = [it for it in items if it.model is not None]
        poly = PolytomousItems.build([str(it.model) for it in pc], [it.a for it in pc], [list(it.b) for it in pc],
                                     1.0) if pc else None
        return cls(np.array([it.a for it in rw]), np.array([it.b[0] for it in rw]), np.array([it.c for it in rw]),
                   np.array([it.d for it in rw]), poly)

    def moved(self, big_a: float, big_b: float) -> _Arrays:
        poly = None if self.poly is None else PolytomousItems(
            self.poly.model, self.poly.a / big_a, big_a * self.poly.thresholds + big_b, 1.0)
        return _Arrays(self.a / big_a, big_a * self.b + big_b, self.c, self.d, poly)

    def curves(self, theta: FloatArray) -> tuple[FloatArray, FloatArray | None]:
        """P(right) (nodes, right/wrong items) and category probabilities (nodes, items, categories)."""
        p = self.c + (self.d - self.c) / (1 + np.exp(-self.a * (theta[:, None] - self.b)))
        return p, None if self.poly is None else category_probabilities(theta, self.poly)


def category_curves(items: Sequence[LinkItem], theta: FloatArray) -> list[FloatArray]:
    """(nodes, categories) probabilities per item, right/wrong items first."""
    arrays = _Arrays.of(items)
    p, cat = arrays.curves(theta)
    out = [np.stack([1 - p[:, i], p[:, i]], axis=1) for i in range(p.shape[1])]
    if cat is not None and arrays.poly is not None:
        out += [cat[:, i, : int(arrays.poly.categories[i])] for i in range(len(arrays.poly))]
    return out


def _moments(old: Sequence[LinkItem], new: Sequence[LinkItem], method: Method) -> tuple[float, float]:
    b_old = np.concatenate([it.b for it in old])
    b_new = np.concatenate([it.b for it in new])
    if method == "mean-mean":
        big_a = float(np.mean([it.a for it in new]) / np.mean([it.a for it in old]))
    else:
        sd_new = float(np.std(b_new))
        if sd_new <= 0:
            raise ValueError("the common items' difficulties do not vary: mean-sigma cannot link them")
        big_a = float(np.std(b_old) / sd_new)
    return big_a, float(np.mean(b_old) - big_a * np.mean(b_new))


def _criterion(old: Sequence[LinkItem], new: Sequence[LinkItem], method: Method, theta: FloatArray,
               w: FloatArray) -> tuple[float, float]:
    target_p, target_cat = _Arrays.of(old).curves(theta)
    new_arrays = _Arrays.of(new)

    def loss(v: np.ndarray) -> float:
        big_a, big_b = float(v[0]), float(v[1])
        if big_a <= 0:
            return 1e12
        p, cat = new_arrays.moved(big_a, big_b).curves(theta)
        if method == "haebara":  # both categories of a right/wrong item: 2 (P - P')^2
            total = 2 * np.sum(w[:, None] * (target_p - p) ** 2)
            if cat is not None and target_cat is not None:
                total += np.sum(w[:, None, None] * (target_cat - cat) ** 2)
            return float(total)
        diff = (target_p - p).sum(axis=1)
        if cat is not None and target_cat is not None:
            scores = np.arange(cat.shape[2])
            diff = diff + ((target_cat - cat) @ scores).sum(axis=1)
        return float(np.sum(w * diff**2))

    start = np.array(_moments(old, new, "mean-sigma"))
    res = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-14, "maxiter": 1000})
    return float(res.x[0]), float(res.x[1])


def constants(old: Sequence[LinkItem], new: Sequence[LinkItem], method: Method = "stocking-lord"
              ) -> tuple[float, float]:
    """(A, B) from the common items, ``old[i]`` and ``new[i]`` the same item."""
    if method in ("mean-sigma", "mean-mean"):
        return _moments(old, new, method)
    if method not in METHODS:
        raise ValueError(f"unknown linking method {method!r} (known: {', '.join(METHODS)})")
    theta = np.linspace(-4.0, 4.0, 41)
    w = np.exp(-0.5 * theta**2)
    return _criterion(old, new, method, theta, w / w.sum())


def link(old: Sequence[LinkItem], new: Sequence[LinkItem], method: Method = "stocking-lord",
         replications: int = 200, seed: int = 0) -> Linking:
    """The constants and their bootstrap SEs (module docstring); ValueError with fewer than
    five common items."""
    if len(old) != len(new):
        raise ValueError("old and new need the same common items")
    if len(old) < MIN_ANCHORS:
        raise ValueError(f"{len(old)} common item(s): linking needs at least {MIN_ANCHORS}")
    big_a, big_b = constants(old, new, method)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(replications):
        pick = rng.integers(0, len(old), len(old))
        if len(set(pick.tolist())) < 2:
            continue
        try:
            draws.append(constants([old[i] for i in pick], [new[i] for i in pick], method))
        except ValueError:
            continue
    sd = np.std(np.array(draws), axis=0, ddof=1) if len(draws) > 1 else np.array([np.nan, np.nan])
    return Linking(method, big_a, big_b, float(sd[0]), float(sd[1]), len(old))
