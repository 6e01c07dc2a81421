"""The partial-credit item family (GRM, GPCM): parameters in an optimiser's vector
(:class:`Layout`), category log-likelihoods and expected counts, the M-step, starting values,
the log prior, the observed information and item fit.

* **M-step**: all items at once by Fisher scoring on each item's
  sum_qk r_ikq log P_ik(t_q) + log prior, with analytic gradients and the expected information
  sum_q N_iq sum_k P_ikq g g^T (g the gradient of log P_ik), each step halved until the item's
  objective does not fall (a generalised EM). Parameters are log a and the thresholds; a GRM's
  thresholds as b_1 and the logs of their increments, so they stay ordered. Priors as for the
  right/wrong items: log a ~ N(mu, sigma^2), floated to the mean log slope each cycle, and each
  threshold ~ N(mu, sigma^2).
* **Starting values from the data**: a = 1; GRM b_k = -logit(share of responses >= k) x 1.7
  (the logistic marginal over N(0, 1) is about 1.7 times flatter); GPCM
  b_k = log(n_{k-1} / n_k), the adjacent-category log-odds at theta = 0.
* **Standard errors** from the observed information: the Hessian of the marginal
  log-likelihood (plus the log prior), by central differences of its exact gradient (Fisher's
  identity: the gradient of the marginal log-likelihood is the M-step objective's gradient at
  the posterior weights of the same parameters; Louis 1982), carried to a and b by the delta
  method.
* **Fit**: RMSD per item between observed and model-implied category proportions across the
  nodes, weighted by the expected counts.
"""

from __future__ import annotations

import numpy as np

from ..model import FloatArray
from ..polytomous import GRM, MODEL_CODES, PolytomousItems, category_probabilities, log_likelihood_table
from .data import CategoryData, posterior
from .priors import Priors

LOG_A_BOUNDS = (np.log(0.05), np.log(6.0))
B_BOUNDS = (-6.0, 6.0)


class Layout:
    """Where each item's parameters sit in the optimiser's vector: log a, then for a GRM b_1
    and log(b_{k+1} - b_k), for a GPCM the steps b_k. Per item the same parameters form a row of
    width 1 + the widest m (:meth:`gather`), ``valid`` marking the ones an item has."""

    def __init__(self, categories: np.ndarray, models: np.ndarray) -> None:
        self.m = np.asarray(categories, dtype=np.int64) - 1  # thresholds per item
        self.models = np.asarray(models, dtype=np.int8)
        self.grm = self.models == GRM
        self.width = int(self.m.max()) + 1  # log a and the thresholds
        cols = np.arange(self.width)
        self.valid = cols[None, :] <= self.m[:, None]
        self.size = int(self.valid.sum())
        self.start = np.concatenate([[0], np.cumsum(1 + self.m)[:-1]]).astype(np.int64)
        lower = np.full(self.valid.shape, B_BOUNDS[0])
        upper = np.full(self.valid.shape, B_BOUNDS[1])
        lower[:, 0], upper[:, 0] = LOG_A_BOUNDS
        increments = self.grm[:, None] & (cols[None, :] >= 2)
        lower[increments], upper[increments] = np.log(1e-3), np.log(12.0)
        self.lower, self.upper = self.scatter(lower), self.scatter(upper)

    def gather(self, vec: FloatArray) -> FloatArray:
        """The vector as rows (items, 1 + widest m), zero where an item has fewer parameters."""
        rows = np.zeros(self.valid.shape)
        rows[self.valid] = vec
        return rows

    def scatter(self, rows: FloatArray) -> FloatArray:
        """The inverse of :meth:`gather` (rows are laid out item after item)."""
        out: FloatArray = rows[self.valid]
        return out

    def unpack(self, vec: FloatArray) -> tuple[FloatArray, FloatArray]:
        rows = self.gather(vec)
        raw = rows[:, 1:]
        has = self.valid[:, 1:]
        steps = np.where(self.grm[:, None] & (np.arange(raw.shape[1])[None, :] >= 1), np.exp(raw), raw)
        b = np.where(self.grm[:, None], np.cumsum(np.where(has, steps, 0.0), axis=1), raw)
        return np.exp(rows[:, 0]), np.where(has, b, np.nan)

    def pack(self, a: FloatArray, b: FloatArray) -> FloatArray:
        rows = np.zeros(self.valid.shape)
        rows[:, 0] = np.log(a)
        t = np.nan_to_num(b)
        grm_raw = np.concatenate([t[:, :1], np.log(np.maximum(np.diff(t, axis=1), 1e-3))], axis=1)
        rows[:, 1:] = np.where(self.grm[:, None], grm_raw, t)
        return self.scatter(rows)

    def jacobian(self, vec: FloatArray) -> FloatArray:
        """d (log a, b_1..b_m) / d (the item's vector parameters), (items, P, P): the identity
        but for a GRM's thresholds, b_k = b_1 + sum_{2<=u<=k} exp(raw_u)."""
        rows = self.gather(vec)
        m_max = self.width - 1
        k, u = np.arange(m_max)[:, None], np.arange(m_max)[None, :]
        graded = np.where(u == 0, 1.0, np.where(u <= k, np.exp(rows[:, None, 1:]), 0.0))
        block = np.where(self.grm[:, None, None], graded, np.eye(m_max)[None])
        has = self.valid[:, 1:]
        jac = np.zeros((self.m.size, self.width, self.width))
        jac[:, 0, 0] = 1.0
        jac[:, 1:, 1:] = block * (has[:, :, None] & has[:, None, :])
        return jac


def _gradients(a: FloatArray, b: FloatArray, models: np.ndarray, nodes: FloatArray, scale: float
               ) -> tuple[FloatArray, FloatArray]:
    """log P (items, K, Q) and its derivatives (items, K, P, Q) in log a (P index 0) and in each
    threshold b_v (index v), for every item, category and node; zero for thresholds an item lacks."""
    n, width = b.shape[0], b.shape[1] + 1
    p = np.transpose(category_probabilities(nodes, PolytomousItems(models, a, b, scale)), (1, 2, 0))  # (n, K, Q)
    grads = np.zeros((n, width, width, nodes.size))
    t = nodes[None, None, :]
    valid_b = ~np.isnan(b)
    grm = models == GRM
    if grm.any():
        da = (scale * a[grm])[:, None, None]
        bb = np.nan_to_num(b[grm])[:, :, None]
        star = np.where(valid_b[grm][:, :, None], 1.0 / (1.0 + np.exp(-da * (t - bb))), 0.0)  # (g, m, Q)
        ds = star * (1.0 - star)
        d_star_loga = da * (t - bb) * ds  # d P*_k / d log a = a D (t - b_k) P*(1 - P*)
        d_star_b = -da * ds  # d P*_k / d b_k
        zeros = np.zeros((d_star_b.shape[0], 1, nodes.size))
        dp = np.zeros((d_star_b.shape[0], width, width, nodes.size))
        dp[:, :, 0] = np.concatenate([zeros, d_star_loga], axis=1) - np.concatenate([d_star_loga, zeros], axis=1)
        for k in range(width - 1):  # P_k gains d P*_k, P_{k-1} loses it
            dp[:, k + 1, k + 1] += d_star_b[:, k]
            dp[:, k, k + 1] -= d_star_b[:, k]
        grads[grm] = dp / np.maximum(p[grm], 1e-300)[:, :, None, :]
    gpcm = ~grm
    if gpcm.any():
        # log P_k = z_k - log sum exp z, z_k = sum_{v<=k} D a (t - b_v)
        pg = p[gpcm]
        da = (scale * a[gpcm])[:, None, None]
        has = valid_b[gpcm]
        steps = np.where(has[:, :, None], da * (t - np.nan_to_num(b[gpcm])[:, :, None]), 0.0)
        z = np.concatenate([np.zeros((steps.shape[0], 1, nodes.size)), np.cumsum(steps, axis=1)], axis=1)
        grads[gpcm, :, 0] = z - np.sum(pg * z, axis=1, keepdims=True)  # d z_k / d log a = z_k
        k_ge_v = (np.arange(width)[:, None] >= np.arange(1, width)[None, :]).astype(np.float64)  # (K, m)
        # d z_k / d b_v = -D a [k >= v]; d log P_k / d b_v = -D a ([k >= v] - P(X >= v))
        tail = np.einsum("nkq,kv->nvq", pg, k_ge_v)  # P(X >= v)
        d_b = -da[:, :, None, :] * (k_ge_v[None, :, :, None] - tail[:, None, :, :])
        grads[gpcm, :, 1:] = np.where(has[:, None, :, None], d_b, 0.0)
    return np.log(np.maximum(p, 1e-300)), grads


def category_log_likelihoods(data: CategoryData, a: FloatArray, b: FloatArray, models: np.ndarray,
                             nodes: FloatArray, scale: float) -> FloatArray:
    """Each person's log-likelihood of their category responses at each node, (persons, nodes):
    sum over the person's answers of log P_{i,x}(t_q), as S @ L."""
    table = log_likelihood_table(PolytomousItems(models, a, b, scale), nodes)  # (n, K, Q)
    table = np.where(np.isneginf(table), 0.0, table)  # categories an item lacks are never indexed
    out: FloatArray = np.asarray(data.indicator @ table.reshape(-1, nodes.size))
    return out



def category_counts(data: CategoryData, w: FloatArray) -> FloatArray:
    """The expected category counts r_ikq = sum_{p: x_pi = k} w_pq, (items, K, Q), as S^T @ w."""
    out: FloatArray = np.asarray(data.indicator.T @ w).reshape(data.n_items, -1, w.shape[1])
    return out


def _e_step(data: CategoryData, a: FloatArray, b: FloatArray, models: np.ndarray, nodes: FloatArray,
            log_weights: FloatArray, scale: float, anchors: FloatArray | None = None) -> tuple[FloatArray, float]:
    """Expected category counts (items, K, Q) and the marginal log-likelihood; ``anchors``
    (persons x nodes) adds the log-likelihood of each person's answers to other items."""
    log_post = category_log_likelihoods(data, a, b, models, nodes, scale) + log_weights[None, :]
    w, loglik = posterior(log_post if anchors is None else log_post + anchors)
    return category_counts(data, w), loglik



def _item_terms(vec: FloatArray, layout: Layout, counts: FloatArray, nodes: FloatArray, priors: Priors,
                scale: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per item, at ``vec``: the expected complete-data log-likelihood plus log prior
    Q_i = sum_kq r_ikq log P_ik(t_q) + log prior_i, its gradient in the item's vector parameters
    (items, P) and its expected information there (items, P, P):
    J^T (sum_q N_iq sum_k P_ikq g_ikq g_ikq^T + prior precision) J, with g the derivatives of
    log P_ik in (log a, b), N_iq = sum_k r_ikq and J from :meth:`Layout.jacobian`."""
    a, b = layout.unpack(vec)
    logp, grads = _gradients(a, b, layout.models, nodes, scale)
    value = np.sum(counts * logp, axis=(1, 2))
    score = np.einsum("nkq,nkpq->np", counts, grads)
    weight = counts.sum(axis=1, keepdims=True) * np.exp(logp)
    info = np.einsum("nkpq,nkrq->npr", weight[:, :, None, :] * grads, grads)
    if priors.log_a is not None:
        mu, sd = priors.log_a
        value -= (np.log(a) - mu) ** 2 / (2 * sd * sd)
        score[:, 0] -= (np.log(a) - mu) / (sd * sd)
        info[:, 0, 0] += 1.0 / (sd * sd)
    if priors.b is not None:
        mu, sd = priors.b
        value -= np.nansum((b - mu) ** 2, axis=1) / (2 * sd * sd)
        score[:, 1:] -= np.nan_to_num((b - mu) / (sd * sd))
        diagonal = np.arange(1, layout.width)
        info[:, diagonal, diagonal] += layout.valid[:, 1:] / (sd * sd)
    jac = layout.jacobian(vec)
    return value, np.einsum("npr,np->nr", jac, score), np.einsum("npr,nps,nsu->nru", jac, info, jac)


def m_step(vec: FloatArray, layout: Layout, counts: FloatArray, nodes: FloatArray, priors: Priors,
            scale: float, max_steps: int = 25, tol: float = 1e-5) -> FloatArray:
    """Maximise each item's Q_i (:func:`_item_terms`) by Fisher scoring, all items at once:
    x <- x + t I^-1 grad, the step capped at 1 in any parameter and halved per item until Q_i
    does not fall, so each M-step raises the EM objective (a generalised EM, Dempster, Laird
    & Rubin 1977)."""
    value, score, info = _item_terms(vec, layout, counts, nodes, priors, scale)
    rows = layout.gather(vec)
    padding = np.eye(layout.width)[None] * ~layout.valid[:, :, None]
    for _ in range(max_steps):
        step = np.linalg.solve(info + padding, score[:, :, None])[:, :, 0] * layout.valid
        size = np.max(np.abs(step), axis=1)
        step /= np.maximum(1.0, size)[:, None]
        pending = size >= tol  # the items still moving
        if not pending.any():
            break
        length = np.ones(rows.shape[0])
        for _halving in range(10):
            trial = layout.gather(np.clip(layout.scatter(rows + length[:, None] * step), layout.lower, layout.upper))
            t_value, t_score, t_info = _item_terms(layout.scatter(trial), layout, counts, nodes, priors, scale)
            better = pending & (t_value >= value)
            rows[better], value[better] = trial[better], t_value[better]
            score[better], info[better] = t_score[better], t_info[better]
            length[pending] /= 2
            pending &= ~better & (length * size >= tol)
            if not pending.any():
                break
    return layout.scatter(rows)


def model_names(models: str | list[str], n_items: int) -> list[str]:
    """One model name per item (a single name: every item), checked."""
    names = [models] * n_items if isinstance(models, str) else list(models)
    unknown = sorted(set(names) - set(MODEL_CODES))
    if unknown or len(names) != n_items:
        raise ValueError(f"model must be GRM or GPCM (one, or one per item), got {unknown or len(names)}")
    return names


def starting_values(data: CategoryData, models: str | list[str]) -> tuple[FloatArray, FloatArray]:
    """a = 1; thresholds from the category shares (module docstring)."""
    names = model_names(models, data.n_items)
    width = int(data.categories.max())
    counts = np.zeros((data.n_items, width))
    np.add.at(counts, (data.item, data.category), 1)
    b = np.full((data.n_items, width - 1), np.nan)
    for j in range(data.n_items):
        m = int(data.categories[j]) - 1
        n = counts[j, :m + 1]
        if names[j] == "GRM":
            share = np.clip(np.cumsum(n[::-1])[::-1][1:] / n.sum(), 1e-3, 1 - 1e-3)  # P(X >= k)
            b[j, :m] = np.maximum.accumulate(-np.log(share / (1 - share)) * 1.7 + np.arange(m) * 1e-3)
        else:
            b[j, :m] = np.log(np.maximum(n[:-1], 0.5) / np.maximum(n[1:], 0.5))
    return np.ones(data.n_items), np.clip(b, *B_BOUNDS)


def log_prior(a: FloatArray, b: FloatArray, priors: Priors) -> float:
    """The log prior of the slopes and thresholds, up to a constant (as in :func:`_item_terms`)."""
    value = 0.0
    if priors.log_a is not None:
        mu, sd = priors.log_a
        value -= float(np.sum((np.log(a) - mu) ** 2)) / (2 * sd * sd)
    if priors.b is not None:
        mu, sd = priors.b
        value -= float(np.nansum((b - mu) ** 2)) / (2 * sd * sd)
    return value


def observed_information(data: CategoryData, vec: FloatArray, layout: Layout, nodes: FloatArray,
                         log_weights: FloatArray, priors: Priors, scale: float,
                         anchors: FloatArray | None = None) -> FloatArray:
    """Minus the Hessian of the marginal log-likelihood + log prior in the vector's parameters,
    by central differences of its exact gradient (Fisher's identity: the M-step objective's
    gradient at the posterior weights of the same parameters; Louis 1982)."""

    def gradient(v: FloatArray) -> FloatArray:
        a, b = layout.unpack(v)
        counts, _ = _e_step(data, a, b, layout.models, nodes, log_weights, scale, anchors)
        return layout.scatter(_item_terms(v, layout, counts, nodes, priors, scale)[1])

    h = 1e-4
    hessian = np.zeros((vec.size, vec.size))
    for k in range(vec.size):
        step = np.zeros_like(vec)
        step[k] = h
        hessian[:, k] = (gradient(vec + step) - gradient(vec - step)) / (2 * h)
    out: FloatArray = -(hessian + hessian.T) / 2
    return out


def standard_errors(cov: FloatArray, vec: FloatArray, layout: Layout) -> tuple[FloatArray, FloatArray]:
    """SE(a) and SE(thresholds) from the covariance of the vector's parameters (log a and the
    raw thresholds) by the delta method: SE(a) = a SE(log a), SE(b) = sqrt(diag(J C J^T))."""
    a, b = layout.unpack(vec)
    jac = layout.jacobian(vec)
    se_a = a * np.sqrt(np.clip(np.diag(cov)[layout.start], 0, None))
    se_b = np.full(b.shape, np.nan)
    for j in range(a.size):
        m = int(layout.m[j])
        idx = layout.start[j] + 1 + np.arange(m)
        block = jac[j, 1:1 + m, 1:1 + m]
        se_b[j, :m] = np.sqrt(np.clip(np.diag(block @ cov[np.ix_(idx, idx)] @ block.T), 0, None))
    return se_a, se_b


def answer_scores(vec: FloatArray, layout: Layout, nodes: FloatArray, scale: float) -> FloatArray:
    """d log P_ik(t_q) / d (item i's vector parameters): (items, K, P, Q), the complete-data
    score of an answer in category k at node q."""
    a, b = layout.unpack(vec)
    _, grads = _gradients(a, b, layout.models, nodes, scale)
    out: FloatArray = np.einsum("npr,nkpq->nkrq", layout.jacobian(vec), grads)
    return out


def category_rmsd(counts: FloatArray, a: FloatArray, b: FloatArray, models: np.ndarray, nodes: FloatArray,
          scale: float) -> FloatArray:
    """Per item: sqrt(sum_q w_q sum_k (observed_kq - P_k(t_q))^2 / K) with w_q the share of the
    item's expected responses at node q."""
    items = PolytomousItems(models, a, b, scale)
    p = np.transpose(category_probabilities(nodes, items), (1, 2, 0))
    n = counts.sum(axis=1, keepdims=True)
    observed = counts / np.maximum(n, 1e-12)
    w = n[:, 0, :] / np.maximum(n[:, 0, :].sum(axis=1, keepdims=True), 1e-12)
    k = items.categories[:, None]
    out: FloatArray = np.sqrt(np.sum(w * np.sum((observed - p) ** 2, axis=1), axis=1) / k[:, 0])
    return out
