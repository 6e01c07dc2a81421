"""Ability estimators: EAP, MAP, MLE and WLE, vectorised over examinees.

A response pattern is an ``(n, k)`` float array: 1 (correct), 0 (wrong) or NaN (no response at
that position), with item parameters broadcastable to ``(n, k)``. Every estimator returns finite
theta and SE for every pattern, the empty one included:

* **EAP** (Bock & Mislevy 1982): posterior mean over fixed quadrature nodes with a normal prior;
  SE is the posterior SD.
* **MAP** (Samejima's Bayes modal): Fisher scoring on the log posterior, started at the EAP;
  SE = 1 / sqrt(I(theta) + 1 / sigma^2).
* **MLE**: the maximiser of the log-likelihood on [-BOUND, BOUND] (grid search, then bisection
  on the score). When the maximum is on the boundary (all-correct, all-wrong and other patterns
  with no finite MLE) or the pattern is empty, the EAP is returned instead and ``fallback`` is
  set: the rule is documented, never silent. SE = 1 / sqrt(I(theta)).
* **WLE** (Warm 1989): the root of the weighted score
  ``sum (x - P) P' / (P Q) + J / (2 I)`` with ``J = sum P' P'' / (P Q)``, which is finite for
  all-correct and all-wrong patterns under the 1PL/2PL. Where no root exists in
  [-BOUND, BOUND] (e.g. some 3PL all-wrong patterns), EAP fallback as for MLE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from .model import FloatArray, ItemParameters, prob, prob_derivatives

Estimator = Literal["EAP", "MAP", "MLE", "WLE"]
BOUND = 6.0
_GRID = np.linspace(-BOUND, BOUND, 121)
_MIN_INFO = 1e-6  # caps SE at 1000 so that nothing is ever infinite


@dataclass(frozen=True)
class NormalPrior:
    """N(mean, sd^2) prior on theta."""

    mean: float = 0.0
    sd: float = 1.0

    def __post_init__(self) -> None:
        if not np.isfinite(self.mean) or not (self.sd > 0 and np.isfinite(self.sd)):
            raise ValueError("prior needs a finite mean and a positive finite sd")


@dataclass(frozen=True)
class Quadrature:
    """Equally spaced nodes on [lo, hi] (61 nodes on [-4, 4] by default) for EAP."""

    n: int = 61
    lo: float = -4.0
    hi: float = 4.0
    nodes: FloatArray = field(init=False, repr=False, compare=False)
    nodes_sq: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.n < 3 or not self.lo < self.hi:
            raise ValueError("quadrature needs n >= 3 nodes on lo < hi")
        nodes = np.linspace(self.lo, self.hi, self.n)
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "nodes_sq", nodes * nodes)

    def log_prior(self, prior: NormalPrior) -> FloatArray:
        """log N(node; mean, sd) up to a constant, one value per node."""
        z = (self.nodes - prior.mean) / prior.sd
        out: FloatArray = -0.5 * z * z
        return out


@dataclass(frozen=True)
class Estimate:
    """Theta and standard error per examinee; ``fallback`` marks MLE/WLE replaced by EAP."""

    theta: FloatArray
    se: FloatArray
    fallback: np.ndarray


def eap_point(log_post: FloatArray, nodes: FloatArray, nodes_sq: FloatArray) -> tuple[float, float]:
    """Posterior mean and SD for one examinee (1-D ``log_post``): the per-answer fast path.

    Same formula as :func:`eap_from_log_posterior` with scalar arithmetic after the two dot
    products (a handful of numpy calls on 61 values, ~10 us).
    """
    w = np.exp(log_post - np.max(log_post))
    total = float(w.sum())
    mean = float(w.dot(nodes)) / total
    var = float(w.dot(nodes_sq)) / total - mean * mean
    return mean, math.sqrt(var) if var > 0 else 0.0


def eap_from_log_posterior(log_post: FloatArray, nodes: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and SD from unnormalised log posterior values at ``nodes`` (last axis)."""
    w = np.exp(log_post - log_post.max(axis=-1, keepdims=True))
    total = w.sum(axis=-1)
    mean = (w @ nodes) / total
    var = (w @ (nodes * nodes)) / total - mean * mean
    return mean, np.sqrt(np.maximum(var, 0.0))


class PatternItems(Protocol):
    """Each examinee's scored items when they are not all right/wrong (a mixed bank's rows,
    :class:`~irtcat.irt.state.MixedPattern`): what the estimators need of them."""

    def score_terms(self, theta: FloatArray, x: FloatArray, mask: np.ndarray
                    ) -> tuple[FloatArray, FloatArray, FloatArray]: ...

    def log_likelihood(self, x: FloatArray, mask: np.ndarray, grid: FloatArray) -> FloatArray: ...


Items = ItemParameters | PatternItems


def _as_pattern(responses: FloatArray, items: Items | None = None) -> tuple[FloatArray, np.ndarray]:
    x = np.atleast_2d(np.asarray(responses, dtype=np.float64))
    mask = ~np.isnan(x)
    if isinstance(items, ItemParameters | None) and np.any(mask & (x != 0) & (x != 1)):
        raise ValueError("responses must be 0, 1 or NaN")
    return np.where(mask, x, 0.0), mask


def pattern_log_likelihood(
    x: FloatArray, mask: np.ndarray, items: Items, grid: FloatArray
) -> FloatArray:
    """sum_k log P(x_k | g) for each examinee and grid point: shape ``(n, len(grid))``."""
    if not isinstance(items, ItemParameters):
        return items.log_likelihood(x, mask, grid)
    p = prob(grid[None, None, :], _expand(items))  # (n, k, g)
    ll = np.where(x[..., None] == 1, np.log(p), np.log1p(-p))
    out: FloatArray = np.where(mask[..., None], ll, 0.0).sum(axis=1)
    return out


def _expand(items: ItemParameters) -> ItemParameters:
    return ItemParameters(
        np.asarray(items.a)[..., None], np.asarray(items.b)[..., None],
        np.asarray(items.c)[..., None], np.asarray(items.d)[..., None], items.scale,
    )


def _score_terms(
    theta: FloatArray, x: FloatArray, mask: np.ndarray, items: Items
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Score, test information and Warm's J at theta (one value per examinee)."""
    if not isinstance(items, ItemParameters):
        return items.score_terms(theta, x, mask)
    p, dp, d2p = prob_derivatives(theta[:, None], items)
    pq = p * (1.0 - p)
    m = mask.astype(np.float64)
    score = (m * (x - p) * dp / pq).sum(axis=1)
    info = (m * dp * dp / pq).sum(axis=1)
    j = (m * dp * d2p / pq).sum(axis=1)
    return score, info, j


def eap(
    responses: FloatArray,
    items: Items,
    prior: NormalPrior = NormalPrior(),
    quadrature: Quadrature = Quadrature(),
) -> Estimate:
    """Expected a posteriori estimate (Bock & Mislevy 1982).

    theta = sum_q t_q L(t_q) pi(t_q) / sum_q L(t_q) pi(t_q); SE = posterior SD.
    """
    x, mask = _as_pattern(responses, items)
    log_post = pattern_log_likelihood(x, mask, items, quadrature.nodes) + quadrature.log_prior(prior)
    theta, se = eap_from_log_posterior(log_post, quadrature.nodes)
    return Estimate(theta, se, np.zeros(theta.shape, dtype=bool))


def map_estimate(
    responses: FloatArray,
    items: Items,
    prior: NormalPrior = NormalPrior(),
    quadrature: Quadrature = Quadrature(),
    max_iter: int = 50,
    tol: float = 1e-8,
) -> Estimate:
    """Maximum a posteriori estimate by Fisher scoring, started at the EAP.

    theta <- theta + (S(theta) - (theta - mu)/sigma^2) / (I(theta) + 1/sigma^2), kept in
    [-BOUND, BOUND]; SE = (I(theta) + 1/sigma^2)^(-1/2).
    """
    x, mask = _as_pattern(responses, items)
    theta = eap(responses, items, prior, quadrature).theta.copy()
    prec = 1.0 / prior.sd**2
    info = np.zeros_like(theta)
    for _ in range(max_iter):
        score, info, _ = _score_terms(theta, x, mask, items)
        step = (score - (theta - prior.mean) * prec) / (info + prec)
        theta = np.clip(theta + step, -BOUND, BOUND)
        if np.all(np.abs(step) < tol):
            break
    _, info, _ = _score_terms(theta, x, mask, items)
    return Estimate(theta, 1.0 / np.sqrt(info + prec), np.zeros(theta.shape, dtype=bool))


def _bisect(lo: FloatArray, hi: FloatArray, fn: _RootFn, iters: int = 40) -> FloatArray:
    """Vectorised bisection for a root of ``fn`` where fn(lo) > 0 >= fn(hi)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        positive = fn(mid) > 0
        lo = np.where(positive, mid, lo)
        hi = np.where(positive, hi, mid)
    return 0.5 * (lo + hi)


class _RootFn:
    def __init__(self, x: FloatArray, mask: np.ndarray, items: Items, warm: bool):
        self.x, self.mask, self.items, self.warm = x, mask, items, warm

    def __call__(self, theta: FloatArray) -> FloatArray:
        score, info, j = _score_terms(theta, self.x, self.mask, self.items)
        if self.warm:
            return score + j / (2.0 * np.maximum(info, _MIN_INFO))
        return score


def _root_estimate(
    responses: FloatArray,
    items: Items,
    prior: NormalPrior,
    quadrature: Quadrature,
    warm: bool,
) -> Estimate:
    x, mask = _as_pattern(responses, items)
    n = x.shape[0]
    fn = _RootFn(x, mask, items, warm)
    grid = _GRID
    # f on the grid, per examinee: (n, g)
    f = np.stack([fn(np.full(n, g)) for g in grid], axis=1)
    down = (f[:, :-1] > 0) & (f[:, 1:] <= 0)  # downward crossings = local maxima
    if warm:
        ll = pattern_log_likelihood(x, mask, items, grid)
        info_grid = np.stack([_score_terms(np.full(n, g), x, mask, items)[1] for g in grid], axis=1)
        crit = ll + 0.5 * np.log(np.maximum(info_grid, _MIN_INFO))
    else:
        crit = pattern_log_likelihood(x, mask, items, grid)
    # best bracket: the crossing whose left end has the highest criterion
    cand = np.where(down, crit[:, :-1], -np.inf)
    k = cand.argmax(axis=1)
    found = down[np.arange(n), k] & mask.any(axis=1)
    if not warm:
        # the global maximiser of the likelihood must be interior, otherwise no finite MLE
        gmax = crit.argmax(axis=1)
        found &= (gmax > 0) & (gmax < grid.size - 1)
    lo, hi = grid[k], grid[np.minimum(k + 1, grid.size - 1)]
    theta = _bisect(lo.astype(np.float64), hi.astype(np.float64), fn)
    _, info, _ = _score_terms(theta, x, mask, items)
    se = 1.0 / np.sqrt(np.maximum(info, _MIN_INFO))
    if not np.all(found):
        fb = eap(responses, items, prior, quadrature)
        theta = np.where(found, theta, fb.theta)
        se = np.where(found, se, fb.se)
    return Estimate(theta, se, ~found)


def mle(
    responses: FloatArray,
    items: Items,
    prior: NormalPrior = NormalPrior(),
    quadrature: Quadrature = Quadrature(),
) -> Estimate:
    """Maximum likelihood estimate; EAP fallback when no finite interior maximum exists."""
    return _root_estimate(responses, items, prior, quadrature, warm=False)


def wle(
    responses: FloatArray,
    items: Items,
    prior: NormalPrior = NormalPrior(),
    quadrature: Quadrature = Quadrature(),
) -> Estimate:
    """Warm's (1989) weighted likelihood estimate; EAP fallback when no root exists."""
    return _root_estimate(responses, items, prior, quadrature, warm=True)


ESTIMATORS = {"EAP": eap, "MAP": map_estimate, "MLE": mle, "WLE": wle}


def estimate(
    method: Estimator,
    responses: FloatArray,
    items: Items,
    prior: NormalPrior = NormalPrior(),
    quadrature: Quadrature = Quadrature(),
) -> Estimate:
    """Dispatch to the named estimator."""
    try:
        fn = ESTIMATORS[method]
    except KeyError:
        raise ValueError(f"unknown estimator {method!r}; choose one of {sorted(ESTIMATORS)}") from None
    return fn(responses, items, prior, quadrature)
