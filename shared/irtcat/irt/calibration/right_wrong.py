"""The right/wrong item family (1PL, 2PL, 3PL on the logistic metric D = 1): response
function and its derivatives, the M-step, the log prior, starting values, the observed
information (Louis 1982) and item fit.

* **M-step**: per item, Fisher scoring on
  sum_q r_iq log P_i(t_q) + (n_iq - r_iq) log(1 - P_i(t_q)) + log prior(a, b, c),
  vectorised over items (each item's step is a 1x1, 2x2 or 3x3 solve).
* **Starting values from the responses alone** (``start="pairwise"``, the default): the Rasch
  pairwise conditional likelihood (Choppin 1968; Zwinderman 1995) compares two items only
  within persons who got exactly one of them right, which removes theta. That is why it works
  on adaptive data, where every item's proportion correct is near 0.5 by design and the
  classical p-value starts (``start="pvalue"``) put every b near 0. The counts
  n_ij = #(i right, j wrong) come from one sparse product X_right^T X_wrong, and the
  Bradley-Terry model on them is fitted with Hunter's (2004) MM algorithm.
* **Standard errors** from the observed information by Louis' (1982) identity
  (:func:`observed_information`): the complete-data information plus the cross-products of the
  persons' scores, which carry the uncertainty in the posterior weights.
* **Item fit**: RMSD between the observed and model-implied proportion correct across the
  nodes, weighted by each item's expected counts (the statistic PISA uses; von Davier 2017).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ..model import FloatArray
from .data import (
    A_BOUNDS,
    B_BOUNDS,
    C_BOUNDS,
    EPS,
    CalibModel,
    ExpectedCounts,
    ItemEstimates,
    ResponseData,
    StartMethod,
)
from .priors import Priors


def prob(est: ItemEstimates, nodes: FloatArray) -> FloatArray:
    """P_i(t_q), shape (items, nodes)."""
    z = est.a[:, None] * (nodes[None, :] - est.b[:, None])
    s = 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
    out: FloatArray = np.clip(est.c[:, None] + (1 - est.c[:, None]) * s, EPS, 1 - EPS)
    return out



def log_posterior(data: ResponseData, est: ItemEstimates, nodes: FloatArray,
                   log_weights: FloatArray, use: np.ndarray | None = None) -> FloatArray:
    """Unnormalised log posterior per person and node, (persons, nodes).

    log L_pq = sum_i x_pi logit P_iq + sum_i log(1 - P_iq), over the items each person
    answered (``use`` restricts to a subset of items, for OEM).
    """
    p = prob(est, nodes)
    logit = np.log(p) - np.log1p(-p)
    log_q = np.log1p(-p)
    if use is not None:
        logit = np.where(use[:, None], logit, 0.0)
        log_q = np.where(use[:, None], log_q, 0.0)
    out: FloatArray = data.right @ logit + data.answered @ log_q + log_weights[None, :]
    return out




# posterior weights below this at a node add nothing measurable to the score products
_W_NEGLIGIBLE = 1e-12


def score_products(data: ResponseData, est: ItemEstimates, nodes: FloatArray, w: FloatArray,
                   model: CalibModel, free: np.ndarray) -> FloatArray:
    """The person-level part of Louis' (1982) observed information, summed over persons:

        C = sum_p [ u_p u_p^T - sum_q w_pq s_pq s_pq^T ],   u_p = sum_q w_pq s_pq,

    where s_pq is person p's complete-data score at node q for the free items' parameters
    ((b, a, c)[:k] per free item, item-major) and w_pq the posterior weights. Louis' identity
    then gives I_obs = E[-H_complete] + C; the first term is block-diagonal by item and comes
    from the expected counts (:func:`observed_information`). C carries the cross-item terms
    that the complete-data information misses. A sum over persons: shards add up.
    """
    k = param_count(model)
    idx = np.flatnonzero(free)
    size = idx.size * k
    out = np.zeros((size, size))
    if idx.size == 0:
        return out
    pos = np.full(data.n_items, -1)
    pos[idx] = np.arange(idx.size)
    p, jac, _ = response_function(est.a[idx], est.b[idx], est.c[idx], nodes, k)
    dp = np.stack(jac, axis=-1)  # (free items, nodes, k)
    d_right = dp / p[..., None]  # d log P
    d_wrong = -dp / (1 - p)[..., None]  # d log (1 - P)
    if sparse.issparse(data.answered):
        return out + _sparse_score_products(data, w, pos, d_right, d_wrong, k, size)
    # dense data: with s_pq = A_p d_wrong_q + X_p (d_right_q - d_wrong_q) per item (A answered,
    # X right), sum_p w_pq s_pq s_pq^T needs only item-by-item products A^T W A, A^T W X,
    # X^T W X per node (k^2 times fewer flops than parameter-by-parameter ones)
    answered = np.asarray(data.answered)[:, idx]
    right = np.asarray(data.right)[:, idx]
    complete = bool(np.all(answered > 0))
    delta = d_right - d_wrong  # (free items, nodes, k)
    for q in range(nodes.size):
        keep = w[:, q] > _W_NEGLIGIBLE
        wq = w[keep, q]
        x_kept = right[keep]
        xx = x_kept.T @ (x_kept * wq[:, None])
        if complete:
            ax = np.broadcast_to(wq @ x_kept, xx.shape)
            aa = np.full(xx.shape, wq.sum())
        else:
            a_kept = answered[keep]
            ax = a_kept.T @ (x_kept * wq[:, None])
            aa = a_kept.T @ (a_kept * wq[:, None])
        d0, d1 = d_wrong[:, q, :], delta[:, q, :]
        for u in range(k):
            for v in range(k):
                out[u::k, v::k] -= (aa * np.outer(d0[:, u], d0[:, v]) + ax * np.outer(d0[:, u], d1[:, v])
                                    + ax.T * np.outer(d1[:, u], d0[:, v]) + xx * np.outer(d1[:, u], d1[:, v]))
    # u_p = sum_q w_pq s_pq, parameter by parameter
    n_free = idx.size
    base = (w @ d_wrong.transpose(1, 0, 2).reshape(nodes.size, size)).reshape(-1, n_free, k)
    slope = (w @ delta.transpose(1, 0, 2).reshape(nodes.size, size)).reshape(-1, n_free, k)
    u_dense = (answered[:, :, None] * base + right[:, :, None] * slope).reshape(data.n_persons, size)
    out += u_dense.T @ u_dense
    return out


# persons per batch of the sparse score products (bounds the batch's arrays to a few 10 MB)
_PERSONS_PER_BATCH = 2000


def _sparse_score_products(data: ResponseData, w: FloatArray, pos: np.ndarray, d_right: FloatArray,
                           d_wrong: FloatArray, k: int, size: int) -> FloatArray:
    """:func:`score_products` for sparse data, person by person: each person's score vectors
    at the nodes, F_p (nodes x n_p k), give sum_q w_pq s s^T = F_p^T diag(w_p) F_p and u_p = F_p^T w_p,
    computed for batches of persons with the same number of responses (one batched matmul),
    then added into the (K, K) result at the persons' parameters."""
    coded = (sparse.csr_matrix(data.answered) + sparse.csr_matrix(data.right)).tocoo()  # 1 wrong, 2 right
    mine = pos[coded.col] >= 0
    person, item, right = coded.row[mine], pos[coded.col[mine]], coded.data[mine] > 1.5
    order = np.argsort(person, kind="stable")
    person, item, right = person[order], item[order], right[order]
    n_per = np.bincount(person, minlength=data.n_persons)
    first = np.concatenate([[0], np.cumsum(n_per)[:-1]])
    total = np.zeros(size * size)
    for n in np.unique(n_per[n_per > 0]):
        group = np.flatnonzero(n_per == n)
        for chunk in np.array_split(group, max(1, group.size // _PERSONS_PER_BATCH)):
            rows = first[chunk][:, None] + np.arange(n)[None, :]  # (m, n) response indices
            its, rts = item[rows], right[rows]
            f = np.where(rts[:, :, None, None], d_right[its], d_wrong[its])  # (m, n, nodes, k)
            f = f.transpose(0, 2, 1, 3).reshape(chunk.size, w.shape[1], n * k)  # (m, nodes, n k)
            wf = w[chunk][:, :, None] * f
            u = wf.sum(axis=1)
            block = u[:, :, None] * u[:, None, :] - wf.transpose(0, 2, 1) @ f
            cols = (its[:, :, None] * k + np.arange(k)[None, None, :]).reshape(chunk.size, n * k)
            flat = cols[:, :, None] * size + cols[:, None, :]
            total += np.bincount(flat.ravel(), weights=block.ravel(), minlength=size * size)
    out: FloatArray = total.reshape(size, size)
    return out


def observed_information(est: ItemEstimates, counts: ExpectedCounts, nodes: FloatArray, model: CalibModel,
                         priors: Priors, free: np.ndarray) -> FloatArray:
    """The observed information of the free items' parameters (Louis 1982, eq. 3.1): minus the
    Hessian of the observed-data log-likelihood plus log prior, (K, K) with K = k * free items,
    item-major, (b, a, c)[:k] within an item.

    I_obs = sum_i,q [ r_iq (-P''/P + P' P'^T / P^2) + (n_iq - r_iq) (P''/(1-P) + P' P'^T/(1-P)^2) ]
            (block-diagonal: the expected complete-data information, with observed curvature)
          + C (:func:`score_products`: the cross-products of the scores, within and across items)
          - the Hessian of the log prior.
    ``counts`` must come from an E-step at ``est`` with all items informing the posterior and
    with ``information=(model, free)``. The latent distribution is taken as known.
    """
    if counts.score_products is None:
        raise ValueError("the observed information needs an E-step with information=(model, free)")
    k = param_count(model)
    idx = np.flatnonzero(free)
    a, b, c = est.a[idx], est.b[idx], est.c[idx]
    p, jac, s = response_function(a, b, c, nodes, k)
    dp = np.stack(jac, axis=-1)
    outer = dp[..., :, None] * dp[..., None, :]
    hess = _response_hessian(a, b, c, s, nodes, k)
    rr = counts.r[idx][..., None, None]
    wrong = (counts.n[idx] - counts.r[idx])[..., None, None]
    pp = p[..., None, None]
    block = np.sum(rr * (outer / pp**2 - hess / pp) + wrong * (outer / (1 - pp) ** 2 + hess / (1 - pp)), axis=1)
    block += _prior_gradient_and_information(a, b, c, priors, k)[1]
    info = counts.score_products.copy()
    for j in range(idx.size):
        info[j * k:(j + 1) * k, j * k:(j + 1) * k] += block[j]
    return info



def param_count(model: CalibModel) -> int:
    return {"1PL": 1, "2PL": 2, "3PL": 3}[model]


def response_function(a: FloatArray, b: FloatArray, c: FloatArray, nodes: FloatArray,
                       k: int) -> tuple[FloatArray, list[FloatArray], FloatArray]:
    """P_i(t_q), its first derivatives dP/d(b, a, c)[:k] and sigma (items x nodes each)."""
    t = nodes[None, :]
    z = a[:, None] * (t - b[:, None])
    s = 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
    p = np.clip(c[:, None] + (1 - c[:, None]) * s, EPS, 1 - EPS)
    ds = s * (1 - s)
    jac = [-(1 - c[:, None]) * ds * a[:, None]]
    if k >= 2:
        jac.append((1 - c[:, None]) * ds * (t - b[:, None]))
    if k == 3:
        jac.append(1 - s)
    return p, jac, s


def _response_hessian(a: FloatArray, b: FloatArray, c: FloatArray, s: FloatArray, nodes: FloatArray,
                      k: int) -> FloatArray:
    """Second derivatives of P_i(t_q) in (b, a, c)[:k]: (items, nodes, k, k).

    With z = a (t - b), P = c + (1 - c) sigma(z), sigma' = sigma (1 - sigma) and
    sigma'' = sigma' (1 - 2 sigma): P_bb = (1-c) sigma'' a^2, P_aa = (1-c) sigma'' (t-b)^2,
    P_ab = -(1-c) (sigma'' a (t-b) + sigma'), P_cb = sigma' a, P_ca = -sigma' (t-b), P_cc = 0.
    """
    t = nodes[None, :]
    d = (t - b[:, None])
    ds = s * (1 - s)
    d2 = ds * (1 - 2 * s)
    one_c = (1 - c)[:, None]
    aa = a[:, None]
    out = np.zeros((*s.shape, k, k))
    out[..., 0, 0] = one_c * d2 * aa**2
    if k >= 2:
        out[..., 1, 1] = one_c * d2 * d**2
        out[..., 0, 1] = out[..., 1, 0] = -one_c * (d2 * aa * d + ds)
    if k == 3:
        out[..., 2, 0] = out[..., 0, 2] = ds * aa
        out[..., 2, 1] = out[..., 1, 2] = -ds * d
    return out


def _item_log_prior(a: FloatArray, b: FloatArray, c: FloatArray, priors: Priors, k: int) -> FloatArray:
    """log prior density of each item's free parameters (up to constants)."""
    out = np.zeros(b.shape)
    if priors.b is not None:
        mu, sd = priors.b
        out -= 0.5 * ((b - mu) / sd) ** 2
    if k >= 2 and priors.log_a is not None:
        mu, sd = priors.log_a
        out -= 0.5 * ((np.log(a) - mu) / sd) ** 2 + np.log(a)  # the density of a, not of log a
    if k == 3 and priors.c is not None:
        al, be = priors.c
        out += (al - 1) * np.log(c) + (be - 1) * np.log1p(-c)
    return out


def _prior_gradient_and_information(a: FloatArray, b: FloatArray, c: FloatArray, priors: Priors,
                                    k: int) -> tuple[FloatArray, FloatArray]:
    """Gradient of :func:`_item_log_prior` (items, k) and its negative Hessian (items, k, k)."""
    grad = np.zeros((b.size, k))
    info = np.zeros((b.size, k, k))
    if priors.b is not None:
        mu, sd = priors.b
        grad[:, 0] -= (b - mu) / sd**2
        info[:, 0, 0] += 1 / sd**2
    if k >= 2 and priors.log_a is not None:
        mu, sd = priors.log_a
        u = np.log(a) - mu
        grad[:, 1] += -u / (sd**2 * a) - 1 / a
        info[:, 1, 1] += (1 - u) / (sd**2 * a**2) - 1 / a**2
    if k == 3 and priors.c is not None:
        al, be = priors.c
        grad[:, 2] += (al - 1) / c - (be - 1) / (1 - c)
        info[:, 2, 2] += (al - 1) / c**2 + (be - 1) / (1 - c) ** 2
    return grad, info


def _objective(a: FloatArray, b: FloatArray, c: FloatArray, nn: FloatArray, rr: FloatArray,
               nodes: FloatArray, priors: Priors, k: int) -> FloatArray:
    """Each item's expected complete-data log-likelihood plus its log prior:
    Q_i = sum_q r_iq log P_i(t_q) + (n_iq - r_iq) log(1 - P_i(t_q)) + log prior_i."""
    z = a[:, None] * (nodes[None, :] - b[:, None])
    s = 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
    p = np.clip(c[:, None] + (1 - c[:, None]) * s, EPS, 1 - EPS)
    out: FloatArray = np.sum(rr * np.log(p) + (nn - rr) * np.log1p(-p), axis=1) + _item_log_prior(a, b, c, priors, k)
    return out


def _bounds(k: int) -> tuple[FloatArray, FloatArray]:
    """Lower and upper bounds of (b, a, c)[:k]."""
    lower = np.array([B_BOUNDS[0], A_BOUNDS[0], C_BOUNDS[0] + 1e-4])[:k]
    upper = np.array([B_BOUNDS[1], A_BOUNDS[1], C_BOUNDS[1]])[:k]
    return lower, upper


def m_step(est: ItemEstimates, n: FloatArray, r: FloatArray, nodes: FloatArray, model: CalibModel,
            priors: Priors, free: np.ndarray, iters: int = 3) -> ItemEstimates:
    """A few projected Fisher-scoring steps per free item on Q_i (:func:`_objective`), each
    accepted only where it does not lower Q_i: a generalised EM step (Dempster, Laird & Rubin
    1977, section 3), so the observed-data log-likelihood plus log prior never falls.

    Parameters at a bound whose gradient points outwards are held for the step (an active
    set), so that a c at its lower bound no longer drags a and b along a step that was solved
    with it free. A Newton step that finds no ascent after halving falls back to a projected,
    diagonally scaled gradient step, which always ascends for a small enough length.
    """
    out = est.copy()
    k = param_count(model)
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return out
    nn, rr = n[idx], r[idx]
    lower, upper = _bounds(k)
    theta = np.stack([out.b[idx], out.a[idx], out.c[idx]], axis=1)[:, :k]
    rest_a, rest_c = out.a[idx], out.c[idx]

    def unpack(th: FloatArray, rows: np.ndarray | slice) -> tuple[FloatArray, FloatArray, FloatArray]:
        a = th[:, 1] if k >= 2 else rest_a[rows]
        c = th[:, 2] if k == 3 else rest_c[rows]
        return a, th[:, 0], c

    def objective(th: FloatArray, rows: np.ndarray | slice) -> FloatArray:
        a, b, c = unpack(th, rows)
        return _objective(a, b, c, nn[rows], rr[rows], nodes, priors, k)

    current = objective(theta, slice(None))
    for _ in range(iters):
        a, b, c = unpack(theta, slice(None))
        p, jac, _ = response_function(a, b, c, nodes, k)
        wgt = 1.0 / (p * (1 - p))
        resid = (rr - nn * p) * wgt
        grad = np.stack([np.sum(resid * j, axis=1) for j in jac], axis=1)
        fisher = np.empty((idx.size, k, k))
        for u in range(k):
            for v in range(u, k):
                fisher[:, u, v] = fisher[:, v, u] = np.sum(nn * wgt * jac[u] * jac[v], axis=1)
        prior_grad, prior_info = _prior_gradient_and_information(a, b, c, priors, k)
        grad += prior_grad
        # the prior's curvature where it is positive (the log-normal's is not everywhere)
        fisher += np.maximum(prior_info, 0.0) * np.eye(k)[None]
        held = ((theta <= lower + 1e-12) & (grad < 0)) | ((theta >= upper - 1e-12) & (grad > 0))
        g = np.where(held, 0.0, grad)
        keep = (~held).astype(float)
        system = fisher * keep[:, :, None] * keep[:, None, :] + np.eye(k)[None] * (1 - keep)[:, :, None]
        newton = np.linalg.solve(system + 1e-9 * np.eye(k)[None], g[..., None])[..., 0]
        scaled = g / np.maximum(np.diagonal(fisher, axis1=1, axis2=2), 1e-9)
        pending = np.ones(idx.size, dtype=bool)
        for direction in (newton, scaled):
            # keep steps modest: EM only needs to improve, and big jumps overshoot on sparse items
            direction = np.clip(direction, -1.0, 1.0)
            length = 1.0
            for _ in range(20):
                rows = np.flatnonzero(pending)
                if rows.size == 0:
                    break
                trial = np.clip(theta[rows] + length * direction[rows], lower, upper)
                value = objective(trial, rows)
                up = value >= current[rows]
                theta[rows[up]], current[rows[up]] = trial[up], value[up]
                pending[rows[up]] = False
                length /= 2
    a, b, c = unpack(theta, slice(None))
    out.a[idx], out.b[idx], out.c[idx] = a, b, c
    return out


def pairwise_difficulties(data: ResponseData, iterations: int = 200, tol: float = 1e-6) -> FloatArray:
    """Rasch difficulties from the pairwise conditional likelihood (mean 0).

    n_ij = number of persons right on i and wrong on j; P(i right | one of i, j right) =
    exp(-b_i) / (exp(-b_i) + exp(-b_j)) does not involve theta. Bradley-Terry by Hunter's MM
    with a half-count pseudo-comparison against a virtual item at b = 0, so that items
    never compared, always right or always wrong stay finite.
    """
    wrong = data.sparse_wrong()
    right_t = data.sparse_right().T.tocsr()
    if data.n_items > 4000:  # very large banks: keep the comparison counts sparse
        return _pairwise_sparse(right_t @ wrong, iterations, tol)
    nij = (right_t @ wrong).toarray()
    np.fill_diagonal(nij, 0.0)
    wins = nij.sum(axis=1) + 0.5
    games = nij + nij.T
    pi = np.ones(data.n_items)
    for _ in range(iterations):
        denom = (games / (pi[:, None] + pi[None, :])).sum(axis=1) + 1.0 / (pi + 1.0)
        new = wins / denom
        new /= np.exp(np.mean(np.log(new)))
        if np.max(np.abs(np.log(new) - np.log(pi))) < tol:
            pi = new
            break
        pi = new
    b = -np.log(pi)
    out: FloatArray = b - b.mean()
    return out


def _pairwise_sparse(nij: sparse.spmatrix, iterations: int, tol: float) -> FloatArray:
    nij = sparse.csr_matrix(nij)
    nij.setdiag(0)
    nij.eliminate_zeros()
    games = (nij + nij.T).tocoo()
    wins = np.asarray(nij.sum(axis=1)).ravel() + 0.5
    pi = np.ones(nij.shape[0])
    for _ in range(iterations):
        vals = games.data / (pi[games.row] + pi[games.col])
        denom = np.bincount(games.row, weights=vals, minlength=pi.size) + 1.0 / (pi + 1.0)
        new = wins / denom
        new /= np.exp(np.mean(np.log(new)))
        done = np.max(np.abs(np.log(new) - np.log(pi))) < tol
        pi = new
        if done:
            break
    b = -np.log(pi)
    out: FloatArray = b - b.mean()
    return out


def starting_values(data: ResponseData, model: CalibModel, method: StartMethod) -> ItemEstimates:
    """Starting values for a, b, c: b from the pairwise conditional likelihood (default; see the
    module docstring), from the proportion correct (``pvalue``: b = -logit(p) / 1.2, the
    classical start that fails on adaptive data) or 0 (``flat``); a = 1; c = 0.2 (3PL)."""
    m = data.n_items
    if method == "pairwise":
        # the pairwise (Rasch) metric has its own unit; a bank targeted at its population has
        # difficulties spread like the N(0, 1) abilities, so the start is put on unit SD
        raw = pairwise_difficulties(data)
        seen = data.per_item() > 0
        sd = float(raw[seen].std()) if seen.sum() > 1 else 1.0
        b = (raw - raw[seen].mean()) / (sd if sd > 0 else 1.0)
    elif method == "pvalue":
        n = np.maximum(data.per_item(), 1)
        p = np.clip(np.asarray(data.right.sum(axis=0)).ravel() / n, 0.02, 0.98)
        b = -np.log(p / (1 - p)) / 1.2
    elif method == "flat":
        b = np.zeros(m)
    else:
        raise ValueError(f"unknown start {method!r}")
    a = np.ones(m)
    c = np.full(m, 0.2 if model == "3PL" else 0.0)
    return ItemEstimates(a, np.clip(b, *B_BOUNDS), c)




def log_prior(est: ItemEstimates, priors: Priors, model: CalibModel, free: np.ndarray,
              informed: np.ndarray) -> float:
    """The log prior of the free items' parameters (up to constants), plus, for a slope prior,
    the log-a terms of the fixed items that inform it: with those, the floated mean
    (:meth:`Priors.floated`) maximises this sum, so floating it between M-steps is a step of
    coordinate ascent on log-likelihood + log prior (the objective whose ascent EM guarantees)."""
    k = param_count(model)
    total = float(np.sum(_item_log_prior(est.a[free], est.b[free], est.c[free], priors, k)))
    anchors = informed & ~free
    if k >= 2 and priors.log_a is not None and anchors.any():
        mu, sd = priors.log_a
        total -= float(np.sum(0.5 * ((np.log(est.a[anchors]) - mu) / sd) ** 2))
    return total



def from_vector(vec: FloatArray, m: int) -> ItemEstimates:
    return ItemEstimates(vec[:m].copy(), vec[m:2 * m].copy(), vec[2 * m:].copy())


def clip_estimates(est: ItemEstimates, model: CalibModel, free: np.ndarray, base: ItemEstimates) -> ItemEstimates:
    """Keep an extrapolated point inside the parameter space; fixed items keep their values."""
    out = ItemEstimates(np.clip(est.a, *A_BOUNDS), np.clip(est.b, *B_BOUNDS),
                        np.clip(est.c, C_BOUNDS[0] + 1e-4, C_BOUNDS[1]))
    if model != "3PL":
        out.c[:] = 0.0
    if model == "1PL":
        out.a[:] = 1.0
    for arr, ref in ((out.a, base.a), (out.b, base.b), (out.c, base.c)):
        arr[~free] = ref[~free]
    return out



def rmsd(est: ItemEstimates, n: FloatArray, r: FloatArray, nodes: FloatArray) -> FloatArray:
    """sqrt(sum_q f_iq (r_iq / n_iq - P_i(t_q))^2) with f_iq = n_iq / sum_q n_iq."""
    p = prob(est, nodes)
    total = np.maximum(n.sum(axis=1, keepdims=True), EPS)
    f = n / total
    obs = np.where(n > EPS, r / np.maximum(n, EPS), p)
    out: FloatArray = np.sqrt(np.sum(f * (obs - p) ** 2, axis=1))
    return out


