"""What the health statistics share: the latent grid, the items' category probabilities on it,
posterior weights of response patterns, and multiple-testing adjustment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..model import FloatArray, ItemParameters, prob
from ..polytomous import PolytomousItems, category_probabilities

Adjust = Literal["bonferroni", "bh", "none"]
MISSING = -1


def normal_grid(nodes: int = 61, bound: float = 6.0, mean: float = 0.0, sd: float = 1.0
                ) -> tuple[FloatArray, FloatArray]:
    """``nodes`` equally spaced points on mean +- bound sd and their normal weights (summing to 1);
    61 points on +-6 is mirt's default for one dimension."""
    z = np.linspace(-bound, bound, nodes)
    w = np.exp(-0.5 * z**2)
    return mean + sd * z, w / w.sum()


@dataclass(frozen=True)
class ItemCurves:
    """Category probabilities of every item on a grid: ``probs[i]`` is (nodes, categories_i),
    category k scoring k points; ``n_params[i]`` the item's estimated parameters."""

    probs: tuple[FloatArray, ...]
    n_params: np.ndarray

    @property
    def categories(self) -> np.ndarray:
        return np.array([p.shape[1] for p in self.probs])

    def subset(self, items: Sequence[int]) -> ItemCurves:
        return ItemCurves(tuple(self.probs[i] for i in items), self.n_params[list(items)])


def right_wrong_curves(params: ItemParameters, theta: FloatArray) -> list[FloatArray]:
    """[1 - P, P] per right/wrong item on ``theta``."""
    p = prob(np.asarray(theta, np.float64)[:, None], params)  # (nodes, items)
    return [np.stack([1.0 - p[:, i], p[:, i]], axis=1) for i in range(p.shape[1])]


def partial_credit_curves(items: PolytomousItems, theta: FloatArray) -> list[FloatArray]:
    """Category probabilities per partial-credit item on ``theta`` (its own categories only)."""
    p = category_probabilities(theta, items)  # (nodes, items, max categories)
    return [p[:, i, : int(items.categories[i])] for i in range(len(items))]


def log_likelihoods(responses: np.ndarray, curves: ItemCurves) -> FloatArray:
    """log P(pattern | theta_q) per person and node; ``responses`` (persons, items), MISSING where
    not answered."""
    persons = responses.shape[0]
    nodes = curves.probs[0].shape[0]
    out = np.zeros((persons, nodes))
    for i, p in enumerate(curves.probs):
        x = responses[:, i]
        seen = x != MISSING
        if seen.any():
            out[seen] += np.log(np.clip(p[:, x[seen]].T, 1e-300, None))
    return out


def posterior_weights(responses: np.ndarray, curves: ItemCurves, weights: FloatArray) -> FloatArray:
    """Each person's posterior over the grid (rows sum to 1)."""
    log_post = log_likelihoods(responses, curves) + np.log(weights)[None, :]
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    out: FloatArray = post / post.sum(axis=1, keepdims=True)
    return out


def adjust_p(p: FloatArray, method: Adjust) -> FloatArray:
    """p-values after a multiple-testing correction: Bonferroni (min(1, m p)), Benjamini &
    Hochberg (1995) step-up (the false-discovery-rate adjusted p), or none. NaN stays NaN and
    is not counted in m."""
    p = np.asarray(p, float)
    out = p.copy()
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if method == "none" or m == 0:
        return out
    if method == "bonferroni":
        out[ok] = np.minimum(1.0, p[ok] * m)
        return out
    if method == "bh":
        order = ok[np.argsort(p[ok])]
        ranked = p[order] * m / np.arange(1, m + 1)
        out[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
        return out
    raise ValueError(f"unknown adjustment {method!r} (bonferroni, bh or none)")
