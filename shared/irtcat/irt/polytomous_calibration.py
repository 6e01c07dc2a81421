"""Calibration of partial-credit items (GRM, GPCM) by marginal maximum likelihood: Bock-Aitkin EM.

Data are long format (person, item, category 0..m), sparse like the dichotomous calibration's
(:mod:`.calibration`): one sparse indicator matrix S (persons x items*categories) carries them.

* **E-step** (Bock & Aitkin 1981): log w_pq = log g_q + sum over p's responses of
  log P_{i,x}(t_q), that is S @ L with L the items' log-likelihood table; the expected
  category counts r_ikq = sum_{p: x_pi = k} w_pq are S^T @ w.
* **Acceleration**: SQUAREM (Varadhan & Roland 2008; :func:`.calibration.squarem_step`), an extrapolation kept
  only when it does not lower the objective (as for the dichotomous EM).
* **M-step**: all items at once by L-BFGS on sum_iqk r_ikq log P_ik(t_q) + log prior, with
  analytic gradients. Parameters are log a and the thresholds; a GRM's thresholds as b_1 and
  the logs of their increments, so they stay ordered. Priors as for the dichotomous models
  (:class:`.calibration.Priors`): log a ~ N(mu, sigma^2), floated to the mean log slope each
  cycle, and each threshold ~ N(mu, sigma^2).
* **Starting values from the data**: a = 1; GRM b_k = -logit(share of responses >= k) x 1.7
  (the logistic marginal over N(0, 1) is about 1.7 times flatter); GPCM
  b_k = log(n_{k-1} / n_k), the adjacent-category log-odds at theta = 0.
* **Standard errors** from the observed information: the Hessian of the marginal
  log-likelihood (plus the log prior), by central differences of its exact gradient (Fisher's
  identity: the gradient of the marginal log-likelihood is the M-step objective's gradient at
  the posterior weights of the same parameters; Louis 1982), carried to a and b by the delta
  method.
* **Fit**: RMSD per item between observed and model-implied category proportions across the
  nodes, weighted by the expected counts (as for the dichotomous items).

A category no one answered in leaves its threshold unidentified: such data are refused with the
items and categories named.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, sparse

from .calibration import Priors, em_cycle, quadrature
from .model import D_LOGISTIC, FloatArray
from .polytomous import GRM, MODEL_CODES, PolytomousItems, category_probabilities, log_likelihood_table

LOG_A_BOUNDS = (np.log(0.05), np.log(6.0))
B_BOUNDS = (-6.0, 6.0)
SE_METHOD = "observed information (Hessian of the marginal log-likelihood; Louis 1982)"


@dataclass
class CategoryData:
    """Long-format category responses and their indicator matrix."""

    person: np.ndarray
    item: np.ndarray
    category: np.ndarray
    n_persons: int
    n_items: int
    categories: np.ndarray  # per item: highest category + 1
    indicator: sparse.csr_matrix = field(init=False, repr=False)  # persons x (items * width)

    def __post_init__(self) -> None:
        width = int(self.categories.max())
        cols = self.item * width + self.category
        self.indicator = sparse.csr_matrix((np.ones(self.person.size), (self.person, cols)),
                                           shape=(self.n_persons, self.n_items * width))

    @classmethod
    def from_long(cls, person: np.ndarray, item: np.ndarray, category: np.ndarray,
                  n_persons: int | None = None, n_items: int | None = None,
                  item_ids: list[str] | None = None) -> CategoryData:
        """Index arrays to data. ValueError on a negative or non-integer category, a repeated
        person-item pair, an item with a single category, or a category below an item's highest
        that nobody answered in (the items and categories named)."""
        person = np.asarray(person, dtype=np.int64)
        item = np.asarray(item, dtype=np.int64)
        raw = np.asarray(category)
        if not (person.shape == item.shape == raw.shape) or person.size == 0:
            raise ValueError("person, item and category need the same, non-zero length")
        if np.any(raw < 0) or np.any(raw != np.round(raw)):
            raise ValueError("categories must be whole numbers 0, 1, 2, ...")
        cat = raw.astype(np.int64)
        n_p = int(person.max()) + 1 if n_persons is None else n_persons
        n_i = int(item.max()) + 1 if n_items is None else n_items
        key = person * n_i + item
        if np.unique(key).size != key.size:
            raise ValueError("duplicate person-item responses")
        names = item_ids or [str(j) for j in range(n_i)]
        highest = np.full(n_i, -1)
        np.maximum.at(highest, item, cat)
        counts = np.zeros((n_i, int(highest.max()) + 1), dtype=np.int64)
        np.add.at(counts, (item, cat), 1)
        problems = []
        for j in range(n_i):
            if highest[j] < 1:
                problems.append(f"{names[j]}: {'no responses' if highest[j] < 0 else 'only category 0'}")
                continue
            missing = [k for k in range(highest[j]) if counts[j, k] == 0]
            if missing:
                problems.append(f"{names[j]}: category {', '.join(map(str, missing))} never observed "
                                f"(observed up to {highest[j]})")
        if problems:
            shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
            raise ValueError(f"{len(problems)} item(s) cannot be calibrated: {shown}. A threshold needs answers "
                             "in the categories on both sides: collect more responses or merge the categories")
        return cls(person, item, cat, n_p, n_i, highest + 1)


@dataclass
class PolytomousResult:
    model: str
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

    def items(self, scale: float = D_LOGISTIC) -> PolytomousItems:
        return PolytomousItems(np.full(self.a.size, MODEL_CODES[self.model], dtype=np.int8), self.a,
                               self.thresholds, scale)

    def summary(self) -> dict[str, Any]:
        k = int(np.sum(~np.isnan(self.thresholds))) + self.a.size
        n = int(self.n_responses.sum())
        return {"model": self.model, "n_items": int(self.a.size), "n_responses": n,
                "cycles": self.cycles, "converged": self.converged, "seconds": self.seconds,
                "minus_2ll": -2 * self.log_likelihood, "aic": -2 * self.log_likelihood + 2 * k,
                "bic": -2 * self.log_likelihood + k * float(np.log(max(n, 1))),
                "priors": self.priors.describe(), "se_method": self.se_method}


class _Layout:
    """Where each item's parameters sit in the optimiser's vector: log a, then for a GRM b_1
    and log(b_{k+1} - b_k), for a GPCM the steps b_k."""

    def __init__(self, categories: np.ndarray, model: int) -> None:
        self.m = categories - 1  # thresholds per item
        self.model = model
        self.width = int(categories.max())
        self.start = np.concatenate([[0], np.cumsum(1 + self.m)[:-1]])
        self.size = int(np.sum(1 + self.m))
        n = categories.size
        # dense index helpers: thresholds table position (item, k) -> vector slot
        self.slot = np.full((n, self.width - 1), -1, dtype=np.int64)
        for j in range(n):
            self.slot[j, :self.m[j]] = self.start[j] + 1 + np.arange(self.m[j])

    def unpack(self, vec: FloatArray) -> tuple[FloatArray, FloatArray]:
        a = np.exp(vec[self.start])
        raw = np.where(self.slot >= 0, vec[np.maximum(self.slot, 0)], np.nan)
        if self.model == GRM:
            steps = np.where(np.arange(raw.shape[1])[None, :] == 0, raw, np.exp(raw))
            b = np.cumsum(np.nan_to_num(steps), axis=1)
            b = np.where(self.slot >= 0, b, np.nan)
        else:
            b = raw
        return a, b

    def pack(self, a: FloatArray, b: FloatArray) -> FloatArray:
        vec = np.zeros(self.size)
        vec[self.start] = np.log(a)
        for j in range(a.size):
            t = b[j, :self.m[j]]
            if self.model == GRM:
                vec[self.start[j] + 1] = t[0]
                vec[self.start[j] + 2:self.start[j] + 1 + self.m[j]] = np.log(np.maximum(np.diff(t), 1e-3))
            else:
                vec[self.start[j] + 1:self.start[j] + 1 + self.m[j]] = t
        return vec

    def jacobian_b(self, vec: FloatArray, j: int) -> FloatArray:
        """d b_k / d (item j's threshold slots), (m, m)."""
        m = int(self.m[j])
        if self.model != GRM:
            return np.eye(m)
        raw = vec[self.start[j] + 1:self.start[j] + 1 + m]
        jac = np.zeros((m, m))
        jac[:, 0] = 1.0
        for u in range(1, m):
            jac[u:, u] = np.exp(raw[u])
        return jac

    def bounds(self) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for j in range(self.m.size):
            out.append(LOG_A_BOUNDS)
            out.append(B_BOUNDS)
            out.extend([(np.log(1e-3), np.log(12.0)) if self.model == GRM else B_BOUNDS] * int(self.m[j] - 1))
        return out


def _gradients(a: FloatArray, b: FloatArray, model: int, nodes: FloatArray, scale: float
               ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """log P (items, K, Q) and its derivatives in log a (items, K, Q) and in each threshold
    (items, K, m_max, Q), for every item, category and node."""
    n, width = b.shape[0], b.shape[1] + 1
    items = PolytomousItems(np.full(n, model, dtype=np.int8), a, b, scale)
    p = np.transpose(category_probabilities(nodes, items), (1, 2, 0))  # (n, K, Q)
    t = nodes[None, None, :]
    da = (scale * a)[:, None, None]
    valid_b = ~np.isnan(b)
    bb = np.nan_to_num(b)[:, :, None]
    if model == GRM:
        star = np.where(valid_b[:, :, None], 1.0 / (1.0 + np.exp(-da * (t - bb))), 0.0)  # (n, m, Q)
        ds = star * (1.0 - star)
        d_star_loga = da * (t - bb) * ds  # d P*_k / d log a = a * D (t - b_k) P*(1 - P*)
        d_star_b = -da * ds  # d P*_k / d b_k
        zeros = np.zeros((n, 1, nodes.size))
        dp_loga = np.concatenate([zeros, d_star_loga], axis=1) - np.concatenate([d_star_loga, zeros], axis=1)
        dp_b = np.zeros((n, width, width - 1, nodes.size))
        for k in range(width - 1):  # P_k gains d P*_k, P_{k-1} loses it
            dp_b[:, k + 1, k] += d_star_b[:, k]
            dp_b[:, k, k] -= d_star_b[:, k]
        safe = np.maximum(p, 1e-300)
        return np.log(safe), dp_loga / safe, dp_b / safe[:, :, None, :]
    # GPCM: log P_k = z_k - log sum exp z, z_k = sum_{v<=k} D a (t - b_v)
    steps = np.where(valid_b[:, :, None], da * (t - bb), 0.0)
    z = np.concatenate([np.zeros((n, 1, nodes.size)), np.cumsum(steps, axis=1)], axis=1)
    mean_z = np.sum(p * z, axis=1, keepdims=True)
    dlog_loga = z - mean_z  # d z_k / d log a = z_k
    k_ge_v = (np.arange(width)[:, None] >= np.arange(1, width)[None, :]).astype(np.float64)  # (K, m)
    # d z_k / d b_v = -D a [k >= v]; d log P_k / d b_v = -D a ([k >= v] - P(X >= v))
    tail = np.einsum("nkq,kv->nvq", p, k_ge_v)  # P(X >= v)
    dlog_b = -da[:, :, None, :] * (k_ge_v[None, :, :, None] - tail[:, None, :, :])
    dlog_b = np.where(valid_b[:, None, :, None], dlog_b, 0.0)
    return np.log(np.maximum(p, 1e-300)), dlog_loga, dlog_b


def _e_step(data: CategoryData, a: FloatArray, b: FloatArray, model: int, nodes: FloatArray,
            log_weights: FloatArray, scale: float, anchors: FloatArray | None = None) -> tuple[FloatArray, float]:
    """Expected category counts (items, K, Q) and the marginal log-likelihood; ``anchors``
    (persons x nodes) adds the log-likelihood of each person's answers to fixed items."""
    items = PolytomousItems(np.full(a.size, model, dtype=np.int8), a, b, scale)
    table = log_likelihood_table(items, nodes)  # (n, K, Q)
    table = np.where(np.isneginf(table), 0.0, table)  # categories an item lacks are never indexed
    log_post = data.indicator @ table.reshape(-1, nodes.size) + log_weights[None, :]
    if anchors is not None:
        log_post = log_post + anchors
    top = log_post.max(axis=1, keepdims=True)
    w = np.exp(log_post - top)
    total = w.sum(axis=1, keepdims=True)
    loglik = float(np.sum(np.log(total) + top))
    w /= total
    counts = np.asarray(data.indicator.T @ w).reshape(a.size, -1, nodes.size)
    return counts, loglik


def _objective(vec: FloatArray, layout: _Layout, counts: FloatArray, nodes: FloatArray, priors: Priors,
               scale: float) -> tuple[float, FloatArray]:
    """-(expected complete-data log-likelihood + log prior) and its gradient in the vector."""
    a, b = layout.unpack(vec)
    logp, d_loga, d_b = _gradients(a, b, layout.model, nodes, scale)
    value = float(np.sum(counts * logp))
    g_loga = np.sum(counts * d_loga, axis=(1, 2))
    g_b = np.einsum("nkq,nkvq->nv", counts, d_b)  # (n, m_max)
    if priors.log_a is not None:
        mu, sd = priors.log_a
        value -= float(np.sum((np.log(a) - mu) ** 2)) / (2 * sd * sd)
        g_loga -= (np.log(a) - mu) / (sd * sd)
    if priors.b is not None:
        mu, sd = priors.b
        value -= float(np.nansum((b - mu) ** 2)) / (2 * sd * sd)
        g_b -= np.nan_to_num((b - mu) / (sd * sd))
    grad = np.zeros_like(vec)
    grad[layout.start] = g_loga
    for j in range(a.size):
        m = int(layout.m[j])
        grad[layout.start[j] + 1:layout.start[j] + 1 + m] = layout.jacobian_b(vec, j).T @ g_b[j, :m]
    return -value, -grad


def starting_values(data: CategoryData, model: str) -> tuple[FloatArray, FloatArray]:
    """a = 1; thresholds from the category shares (module docstring)."""
    width = int(data.categories.max())
    counts = np.zeros((data.n_items, width))
    np.add.at(counts, (data.item, data.category), 1)
    b = np.full((data.n_items, width - 1), np.nan)
    for j in range(data.n_items):
        m = int(data.categories[j]) - 1
        n = counts[j, :m + 1]
        if model == "GRM":
            share = np.clip(np.cumsum(n[::-1])[::-1][1:] / n.sum(), 1e-3, 1 - 1e-3)  # P(X >= k)
            b[j, :m] = np.maximum.accumulate(-np.log(share / (1 - share)) * 1.7 + np.arange(m) * 1e-3)
        else:
            b[j, :m] = np.log(np.maximum(n[:-1], 0.5) / np.maximum(n[1:], 0.5))
    return np.ones(data.n_items), np.clip(b, *B_BOUNDS)


def calibrate_polytomous(data: CategoryData, model: str, priors: Priors | None = None, n_nodes: int = 61,
                         max_cycles: int = 500, tol: float = 1e-4, scale: float = D_LOGISTIC,
                         standard_errors: bool = True, accelerate: bool = True,
                         anchors: FloatArray | None = None) -> PolytomousResult:
    """MML-EM estimates of a GRM or GPCM bank from ``data`` (module docstring). Converged when
    no parameter moves more than ``tol`` in an accepted step. ``accelerate``: SQUAREM around
    the EM map (``history``, the objective at each accepted point, never falls without priors
    to float); ``False``: plain EM. ``cycles`` counts EM cycles (E-step and M-step).
    ``anchors`` (persons x ``n_nodes`` nodes on [-6, 6]): the log-likelihood of each person's
    answers to items held fixed, so that their posterior uses those items too (online
    calibration of pretest items, MEM: Ban et al. 2001)."""
    if model not in MODEL_CODES:
        raise ValueError(f"model must be GRM or GPCM, got {model!r}")
    started = time.perf_counter()
    code = MODEL_CODES[model]
    priors = Priors.default("2PL") if priors is None else priors
    if priors.c is not None:
        raise ValueError("a guessing prior (c) has no meaning for partial-credit items")
    nodes, weights = quadrature(n_nodes)
    log_weights = np.log(weights)
    layout = _Layout(data.categories, code)
    a, b = starting_values(data, model)
    vec = layout.pack(a, b)
    lower, upper = (np.array(x) for x in zip(*layout.bounds(), strict=True))

    def em(v: FloatArray) -> tuple[FloatArray, float]:
        """One EM cycle from ``v``, and the objective at ``v`` (log-likelihood + log prior)."""
        a, b = layout.unpack(v)
        counts, loglik = _e_step(data, a, b, code, nodes, log_weights, scale, anchors)
        current = priors.floated(a)
        fit = optimize.minimize(_objective, v, args=(layout, counts, nodes, current, scale), jac=True,
                                method="L-BFGS-B", bounds=layout.bounds(), options={"maxiter": 50})
        return fit.x, loglik + _log_prior(a, b, current)

    history: list[float] = []
    converged = False
    cycle = 0
    while cycle < max_cycles:
        before = vec
        vec, value, used = em_cycle(em, vec, lambda v: v, lambda v: np.clip(v, lower, upper),
                                    accelerate and cycle + 3 <= max_cycles)
        cycle += used
        history.append(value)
        a_old, b_old = layout.unpack(before)
        a_new, b_new = layout.unpack(vec)
        change = max(float(np.max(np.abs(a_new - a_old))), float(np.nanmax(np.abs(b_new - b_old))))
        if len(history) >= 2 and change < tol:
            converged = True
            break
    a, b = layout.unpack(vec)
    counts, loglik = _e_step(data, a, b, code, nodes, log_weights, scale, anchors)
    se_a = np.full(a.size, np.nan)
    se_b = np.full(b.shape, np.nan)
    if standard_errors:
        se_a, se_b = _observed_se(data, vec, layout, nodes, log_weights, priors.floated(a), scale, anchors)
    return PolytomousResult(
        model=model, a=a, thresholds=b, se_a=se_a, se_thresholds=se_b, rmsd=_rmsd(counts, a, b, code, nodes, scale),
        n_responses=np.bincount(data.item, minlength=data.n_items), log_likelihood=loglik, cycles=cycle,
        converged=converged, seconds=time.perf_counter() - started, priors=priors, history=history)


def _log_prior(a: FloatArray, b: FloatArray, priors: Priors) -> float:
    """The log prior of the slopes and thresholds, up to a constant (as in :func:`_objective`)."""
    value = 0.0
    if priors.log_a is not None:
        mu, sd = priors.log_a
        value -= float(np.sum((np.log(a) - mu) ** 2)) / (2 * sd * sd)
    if priors.b is not None:
        mu, sd = priors.b
        value -= float(np.nansum((b - mu) ** 2)) / (2 * sd * sd)
    return value


def _observed_se(data: CategoryData, vec: FloatArray, layout: _Layout, nodes: FloatArray,
                 log_weights: FloatArray, priors: Priors, scale: float,
                 anchors: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
    """SEs from the Hessian of the marginal log-likelihood + log prior (central differences of
    its exact gradient), by the delta method to a and the thresholds."""

    def gradient(v: FloatArray) -> FloatArray:
        a, b = layout.unpack(v)
        counts, _ = _e_step(data, a, b, layout.model, nodes, log_weights, scale, anchors)
        return -_objective(v, layout, counts, nodes, priors, scale)[1]

    h = 1e-4
    hessian = np.zeros((vec.size, vec.size))
    for k in range(vec.size):
        step = np.zeros_like(vec)
        step[k] = h
        hessian[:, k] = (gradient(vec + step) - gradient(vec - step)) / (2 * h)
    info = -(hessian + hessian.T) / 2
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(info)
    a, b = layout.unpack(vec)
    se_a = a * np.sqrt(np.clip(np.diag(cov)[layout.start], 0, None))
    se_b = np.full(b.shape, np.nan)
    for j in range(a.size):
        m = int(layout.m[j])
        idx = layout.start[j] + 1 + np.arange(m)
        jac = layout.jacobian_b(vec, j)
        se_b[j, :m] = np.sqrt(np.clip(np.diag(jac @ cov[np.ix_(idx, idx)] @ jac.T), 0, None))
    return se_a, se_b


def _rmsd(counts: FloatArray, a: FloatArray, b: FloatArray, model: int, nodes: FloatArray,
          scale: float) -> FloatArray:
    """Per item: sqrt(sum_q w_q sum_k (observed_kq - P_k(t_q))^2 / K) with w_q the share of the
    item's expected responses at node q."""
    items = PolytomousItems(np.full(a.size, model, dtype=np.int8), a, b, scale)
    p = np.transpose(category_probabilities(nodes, items), (1, 2, 0))
    n = counts.sum(axis=1, keepdims=True)
    observed = counts / np.maximum(n, 1e-12)
    w = n[:, 0, :] / np.maximum(n[:, 0, :].sum(axis=1, keepdims=True), 1e-12)
    k = items.categories[:, None]
    out: FloatArray = np.sqrt(np.sum(w * np.sum((observed - p) ** 2, axis=1), axis=1) / k[:, 0])
    return out
