"""One Bock-Aitkin EM for right/wrong items (1PL, 2PL, 3PL) and partial-credit items (GRM,
GPCM) together, each item keeping its model.

* **E-step** (Bock & Aitkin 1981): each person's posterior over the nodes uses every answer
  they gave, log w_pq = log g_q + sum over right/wrong items of log P_i(x_pi | t_q) + sum over
  partial-credit items of log P_{i,x}(t_q), plus, for online calibration, the log-likelihood
  of their answers to items held fixed (``anchors``; MEM, Ban et al. 2001).
* **M-step**: given the weights, the expected complete-data log-likelihood separates by item,
  so each family takes its own generalised M-step: Fisher scoring with an active set for the
  right/wrong items (:func:`.calibration._m_step`), Fisher scoring with step halving for the
  partial-credit ones (:func:`.polytomous_calibration.m_step`). Each raises its items' part of
  the objective, so the joint log-likelihood plus both log priors never falls (Dempster,
  Laird & Rubin 1977); SQUAREM (Varadhan & Roland 2008) accelerates the joint map with the
  same monotone safeguard as either calibration alone. Each family's slope prior is floated to
  its own mean log slope.
* **Standard errors** from the observed information of the joint model, inverted whole: the
  right/wrong block by Louis' identity (:func:`.calibration.observed_information`), the
  partial-credit block as the Hessian of the marginal log-likelihood
  (:func:`.polytomous_calibration.observed_information`), and the block across the families
  from the persons' score cross-products (:func:`cross_information`). Without that block each
  family's SEs would be conditional on the other's estimates, too small by up to 14% on a bank
  of 12 right/wrong and 6 partial-credit items.

Right/wrong items are on the logistic metric D = 1, as in :mod:`.calibration`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from .calibration import (
    CalibModel,
    CalibrationResult,
    ExpectedCounts,
    ItemEstimates,
    Priors,
    ResponseData,
    _clip_estimates,
    _covariance,
    _expected_counts,
    _from_vector,
    _log_posterior,
    _m_step,
    _param_count,
    _posterior,
    _response_function,
    e_step,
    em_cycle,
    finish,
    log_prior,
    observed_information,
    quadrature,
    score_products,
    starting_values,
)
from .model import D_LOGISTIC, FloatArray
from .polytomous import MODEL_CODES, PolytomousItems, log_likelihood_table
from .polytomous_calibration import (
    CategoryData,
    Layout,
    PolytomousResult,
    answer_scores,
    category_counts,
    category_log_likelihoods,
    category_rmsd,
    m_step,
    model_names,
)
from .polytomous_calibration import log_prior as partial_log_prior
from .polytomous_calibration import observed_information as partial_information
from .polytomous_calibration import standard_errors as partial_standard_errors
from .polytomous_calibration import starting_values as partial_starting_values

JOINT_SE_METHOD = ("observed information of the joint model: Louis (1982) for the right/wrong items and "
                   "across the families, the Hessian of the marginal log-likelihood for the partial-credit items")


@dataclass
class MixedResult:
    """Each family's estimates (None where the run had no such items) and the joint run's
    marginal log-likelihood, cycles and objective trace."""

    right_wrong: CalibrationResult | None
    partial: PolytomousResult | None
    log_likelihood: float
    cycles: int
    converged: bool
    seconds: float
    history: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """-2LL, AIC and BIC of the joint model (n = responses), counts and the run."""
        k, n, models = 0, 0, list[str]()
        if self.right_wrong is not None:
            k += self.right_wrong.n_parameters
            n += int(self.right_wrong.n_responses.sum())
            models.append(self.right_wrong.model)
        if self.partial is not None:
            k += int(np.sum(~np.isnan(self.partial.thresholds))) + self.partial.a.size
            n += int(self.partial.n_responses.sum())
            models.append(self.partial.model)
        return {"model": "+".join(models), "n_parameters": k, "n_responses": n, "cycles": self.cycles,
                "converged": self.converged, "seconds": self.seconds, "minus_2ll": -2 * self.log_likelihood,
                "aic": -2 * self.log_likelihood + 2 * k,
                "bic": -2 * self.log_likelihood + k * float(np.log(max(n, 1)))}


@dataclass
class _State:
    est: ItemEstimates
    vec: FloatArray


def calibrate_mixed(right_wrong: ResponseData | None = None, partial: CategoryData | None = None, *,
                    model: CalibModel = "3PL", partial_models: str | list[str] = "GRM",
                    priors: Priors | None = None, partial_priors: Priors | None = None,
                    anchors: FloatArray | None = None, n_nodes: int = 61, max_cycles: int = 500,
                    tol: float = 1e-4, min_responses: int = 30, standard_errors: bool = True,
                    accelerate: bool = True, scale: float = D_LOGISTIC) -> MixedResult:
    """MML-EM estimates of the right/wrong items in ``right_wrong`` (as ``model``) and the
    partial-credit items in ``partial`` (``partial_models``: one model or one per item) from
    one posterior per person (module docstring). Both data sets index the same persons.
    ``anchors`` (persons x ``n_nodes`` nodes on [-6, 6]): the log-likelihood of each person's
    answers to items held fixed. Right/wrong items with fewer than ``min_responses`` answers
    are left out of the estimation (they still inform the posterior at their starting values,
    as in :func:`.calibration.calibrate`). Converged when no parameter moves more than ``tol``
    in an accepted step; ``history`` holds the objective (log-likelihood + log priors) at each
    accepted point. ``cycles`` counts EM cycles."""
    if right_wrong is None and partial is None:
        raise ValueError("nothing to calibrate: give right/wrong or partial-credit responses")
    if right_wrong is not None and partial is not None and right_wrong.n_persons != partial.n_persons:
        raise ValueError("right/wrong and partial-credit responses must index the same persons")
    if right_wrong is not None and scale != 1.0:
        raise ValueError("right/wrong items are calibrated on the metric D = 1")
    started = time.perf_counter()
    nodes, weights = quadrature(n_nodes)
    log_weights = np.log(weights)
    n_persons = right_wrong.n_persons if right_wrong is not None else partial.n_persons  # type: ignore[union-attr]
    base_log_post = np.broadcast_to(log_weights, (n_persons, n_nodes)) if anchors is None else log_weights + anchors
    no_weights = np.zeros(n_nodes)

    # the right/wrong family (one placeholder item, never estimated, when the run has none)
    rw_priors = priors if priors is not None else Priors.default(model)
    counts_rw = right_wrong.per_item() if right_wrong is not None else np.zeros(1, dtype=np.int64)
    free = counts_rw >= max(min_responses, 1)
    left_out = {int(i): f"too few responses ({counts_rw[i]} < {min_responses})"
                for i in np.flatnonzero(~free)} if right_wrong is not None else {}
    est = starting_values(right_wrong, model, "pairwise") if right_wrong is not None else ItemEstimates(
        np.ones(1), np.zeros(1), np.zeros(1))
    if model != "3PL":
        est.c[:] = 0.0
    if model == "1PL":
        est.a[:] = 1.0

    # the partial-credit family
    names = model_names(partial_models, partial.n_items) if partial is not None else []
    pc_priors = partial_priors if partial_priors is not None else Priors.default("2PL")
    if pc_priors.c is not None:
        raise ValueError("a guessing prior (c) has no meaning for partial-credit items")
    codes = np.array([MODEL_CODES[m] for m in names], dtype=np.int8)
    layout = Layout(partial.categories, codes) if partial is not None else None
    vec = layout.pack(*partial_starting_values(partial, names)) if partial is not None and layout else np.zeros(0)

    def rw_loglik(e: ItemEstimates) -> FloatArray | float:
        return _log_posterior(right_wrong, e, nodes, no_weights) if right_wrong is not None else 0.0

    def pc_loglik(v: FloatArray) -> FloatArray | float:
        if partial is None or layout is None:
            return 0.0
        return category_log_likelihoods(partial, *layout.unpack(v), codes, nodes, scale)

    def joint_log_posterior(e: ItemEstimates, v: FloatArray) -> FloatArray:
        """log g_q + every answer's log-likelihood (+ the anchors), a fresh array."""
        parts = [x for x in (rw_loglik(e), pc_loglik(v)) if not isinstance(x, float)]
        out = parts[0]
        for part in parts[1:]:
            out += part
        out += base_log_post
        return out

    def em(state: _State) -> tuple[_State, float]:
        """One joint EM cycle from ``state``, and the objective there."""
        w, value = _posterior(joint_log_posterior(state.est, state.vec))
        new_est, new_vec = state.est, state.vec
        if right_wrong is not None:
            n, r = _expected_counts(right_wrong, w)
            at = rw_priors.floated(state.est.a[free])
            new_est = _m_step(state.est, n, r, nodes, model, at, free)
            value += log_prior(state.est, at, model, free, free)
        if partial is not None and layout is not None:
            a, b = layout.unpack(state.vec)
            current = pc_priors.floated(a)
            new_vec = m_step(state.vec, layout, category_counts(partial, w), nodes, current, scale)
            value += partial_log_prior(a, b, current)
        return _State(new_est, new_vec), value

    def vector(state: _State) -> FloatArray:
        return np.concatenate([state.est.vector(), state.vec])

    def project(v: FloatArray, base: ItemEstimates = est) -> _State:
        size = base.a.size * 3
        rows = _clip_estimates(_from_vector(v[:size], base.a.size), model, free, base)
        pc = np.clip(v[size:], layout.lower, layout.upper) if layout is not None else v[size:]
        return _State(rows, pc)

    state = _State(est, vec)
    history: list[float] = []
    converged = False
    cycle = 0
    while cycle < max_cycles:
        before = vector(state)
        state, value, used = em_cycle(em, state, vector, project, accelerate and cycle + 3 <= max_cycles)
        cycle += used
        history.append(value)
        change = _largest_change(before, vector(state), est.a.size, layout)
        if len(history) >= 2 and change < tol:
            converged = True
            break
    seconds = time.perf_counter() - started
    est, vec = state.est, state.vec

    w, loglik = _posterior(joint_log_posterior(est, vec))
    a, b = layout.unpack(vec) if layout is not None else (np.zeros(0), np.zeros((0, 0)))
    pc_info = None
    if partial is not None and layout is not None and standard_errors:
        others = base_log_post - log_weights + rw_loglik(est)
        pc_info = partial_information(partial, vec, layout, nodes, log_weights, pc_priors.floated(a), scale, others)
    rw_result, rw_cov, pc_cov = None, None, None
    if right_wrong is not None:
        final = e_step(right_wrong, est, nodes, log_weights, None, information=(model, free),
                       anchors=base_log_post - log_weights + pc_loglik(vec))
        at = rw_priors.floated(est.a[free])
        if pc_info is not None and partial is not None and layout is not None:
            rw_info = observed_information(est, final, nodes, model, at, free)
            cross = cross_information(right_wrong, est, model, free, partial, layout, vec, nodes, w, scale)
            cov = _covariance(np.block([[rw_info, cross], [cross.T, pc_info]]))
            rw_cov, pc_cov = cov[:rw_info.shape[0], :rw_info.shape[0]], cov[rw_info.shape[0]:, rw_info.shape[0]:]
        rw_result = finish(est, final, nodes, model, at, free, counts_rw, left_out, cycle, converged, seconds,
                           0.0, 1.0, history, covariance=rw_cov)
        if pc_info is not None:
            rw_result.se_method = JOINT_SE_METHOD
    pc_result = None
    if partial is not None and layout is not None:
        se_a, se_b = np.full(a.size, np.nan), np.full(b.shape, np.nan)
        if pc_info is not None:
            se_a, se_b = partial_standard_errors(_covariance(pc_info) if pc_cov is None else pc_cov, vec, layout)
        pc_result = PolytomousResult(
            models=names, a=a, thresholds=b, se_a=se_a, se_thresholds=se_b,
            rmsd=category_rmsd(category_counts(partial, w), a, b, codes, nodes, scale),
            n_responses=np.bincount(partial.item, minlength=partial.n_items), log_likelihood=loglik, cycles=cycle,
            converged=converged, seconds=seconds, priors=pc_priors, history=history)
        if pc_cov is not None:
            pc_result.se_method = JOINT_SE_METHOD
    return MixedResult(rw_result, pc_result, loglik, cycle, converged, time.perf_counter() - started, history)


def cross_information(right_wrong: ResponseData, est: ItemEstimates, model: CalibModel, free: np.ndarray,
                      partial: CategoryData, layout: Layout, vec: FloatArray, nodes: FloatArray, w: FloatArray,
                      scale: float, batch: int = 500) -> FloatArray:
    """The observed information between the free right/wrong items' parameters ((b, a, c)[:k]
    per item, item-major, as :func:`.calibration.observed_information` orders them) and the
    partial-credit items' vector parameters. The complete-data log-likelihood has no terms
    across items, so Louis' (1982) identity leaves only the persons' score cross-products:

        I_rw,pc = sum_p [ u_p^rw (u_p^pc)^T - sum_q w_pq s_pq^rw (s_pq^pc)^T ],  u_p = sum_q w_pq s_pq,

    with s_pq person p's complete-data score at node q (right/wrong: x d log P + (1 - x)
    d log(1 - P) over their answers; partial credit: d log P_{i,x} over theirs) and w_pq the
    joint posterior weights. Only persons who answered a partial-credit item contribute; they
    are taken ``batch`` at a time."""
    k = _param_count(model)
    idx = np.flatnonzero(free)
    out = np.zeros((idx.size * k, layout.size))
    persons = np.unique(partial.person)
    if idx.size == 0 or persons.size == 0:
        return out
    p, jac, _ = _response_function(est.a[idx], est.b[idx], est.c[idx], nodes, k)
    dp = np.stack(jac, axis=-1)  # (items, nodes, k)
    d_wrong = -dp / (1 - p)[..., None]
    delta = dp / p[..., None] - d_wrong
    answered = sparse.csr_matrix(right_wrong.answered)[:, idx]
    right = sparse.csr_matrix(right_wrong.right)[:, idx]
    scores = answer_scores(vec, layout, nodes, scale)  # (items, K, P, Q)
    position = np.full(layout.valid.shape, -1)
    position[layout.valid] = np.arange(layout.size)
    order = np.argsort(partial.person, kind="stable")
    sorted_person = partial.person[order]
    n_nodes = nodes.size
    for chunk in np.array_split(persons, max(1, persons.size // batch)):
        rows = order[np.searchsorted(sorted_person, chunk[0]):np.searchsorted(sorted_person, chunk[-1], "right")]
        local = np.searchsorted(chunk, partial.person[rows])
        pos = position[partial.item[rows]]  # (answers, P)
        vals = scores[partial.item[rows], partial.category[rows]]  # (answers, P, Q)
        ok = pos >= 0
        person_scores = np.zeros((chunk.size, layout.size, n_nodes))
        person_scores[np.broadcast_to(local[:, None], pos.shape)[ok], pos[ok]] = vals[ok]
        weighted = w[chunk][:, None, :] * person_scores  # (c, K_pc, Q)
        u_pc = weighted.sum(axis=2)
        wc = w[chunk]
        a_c, x_c = answered[chunk], right[chunk]
        u_rw = (a_c.toarray()[:, :, None] * np.einsum("pq,iqt->pit", wc, d_wrong)
                + x_c.toarray()[:, :, None] * np.einsum("pq,iqt->pit", wc, delta))
        out += u_rw.reshape(chunk.size, -1).T @ u_pc
        flat = weighted.reshape(chunk.size, -1)
        by_answered = np.asarray(a_c.T @ flat).reshape(idx.size, layout.size, n_nodes)
        by_right = np.asarray(x_c.T @ flat).reshape(idx.size, layout.size, n_nodes)
        cross = np.einsum("iqt,ikq->itk", d_wrong, by_answered) + np.einsum("iqt,ikq->itk", delta, by_right)
        out -= cross.reshape(idx.size * k, layout.size)
    return out


def _largest_change(before: FloatArray, after: FloatArray, n_right_wrong: int, layout: Layout | None) -> float:
    """The largest move of any a, b, c or threshold between two joint vectors."""
    size = 3 * n_right_wrong
    change = float(np.max(np.abs(after[:size] - before[:size])))
    if layout is not None:
        a_old, b_old = layout.unpack(before[size:])
        a_new, b_new = layout.unpack(after[size:])
        change = max(change, float(np.max(np.abs(a_new - a_old))), float(np.nanmax(np.abs(b_new - b_old))))
    return change


def calibrate_polytomous(data: CategoryData, model: str | list[str], priors: Priors | None = None,
                         n_nodes: int = 61, max_cycles: int = 500, tol: float = 1e-4, scale: float = D_LOGISTIC,
                         standard_errors: bool = True, accelerate: bool = True,
                         anchors: FloatArray | None = None) -> PolytomousResult:
    """MML-EM estimates of GRM and GPCM items alone (:func:`calibrate_mixed` without right/wrong
    items); ``model`` names one model for every item or one per item. ``accelerate=False``:
    plain EM. ``anchors``: as in :func:`calibrate_mixed` (online calibration of pretest items
    against fixed ones)."""
    result = calibrate_mixed(None, data, partial_models=model, partial_priors=priors, anchors=anchors,
                             n_nodes=n_nodes, max_cycles=max_cycles, tol=tol, scale=scale,
                             standard_errors=standard_errors, accelerate=accelerate)
    assert result.partial is not None
    return result.partial


@dataclass
class PartialAnswers:
    """A shard's answers to partial-credit items, for :func:`joint_e_step`: ``items`` holds
    every partial-credit item of the run at its current values, ``free`` marks the estimated
    ones; per answer the person, the item (its position in ``items``) and the category."""

    items: PolytomousItems
    free: np.ndarray
    person: np.ndarray
    item: np.ndarray
    category: np.ndarray

    def free_data(self, n_persons: int) -> CategoryData:
        """The answers to the free items (numbered among themselves), each item with the
        categories it states: a shard need not have seen them all."""
        position = np.cumsum(self.free) - 1
        rows = self.free[self.item]
        return CategoryData(self.person[rows], position[self.item[rows]], self.category[rows], n_persons,
                            int(self.free.sum()), self.items.categories[self.free])


def joint_e_step(right_wrong: ResponseData, est: ItemEstimates, nodes: FloatArray, log_weights: FloatArray,
                 partial: PartialAnswers | None = None, use: np.ndarray | None = None,
                 information: tuple[CalibModel, np.ndarray] | None = None,
                 cross: tuple[Layout, FloatArray, float] | None = None
                 ) -> tuple[ExpectedCounts, FloatArray, FloatArray | None]:
    """One E-step of a sharded joint run over one shard's persons: the posterior from every
    answer (``use``, as in :func:`.calibration.e_step`: only those right/wrong items, and then
    no free partial-credit item, inform it: OEM), the right/wrong items' n_iq and r_iq, the free
    partial-credit items' expected category counts, and with ``information`` the right/wrong
    score products. Also returns each person's log-likelihood of every answer but those to free
    partial-credit items (persons x nodes): what their standard errors take as anchors. With
    ``information`` and ``cross`` (the free partial-credit items' layout, vector and scale)
    also this shard's part of the information across the families (:func:`cross_information`;
    a sum over persons, so shards add up)."""
    n_persons = right_wrong.n_persons
    others = _log_posterior(right_wrong, est, nodes, np.zeros(nodes.size), use)
    free_part: FloatArray | float = 0.0
    categories = None
    if partial is not None:
        table = log_likelihood_table(partial.items, nodes)
        rows = np.where(np.isneginf(table), 0.0, table)[partial.item, partial.category]  # (answers, Q)
        is_free = partial.free[partial.item]
        by_person = sparse.csr_matrix((np.ones(partial.person.size), (partial.person, np.arange(partial.person.size))),
                                      shape=(n_persons, partial.person.size))
        others = others + by_person[:, ~is_free] @ rows[~is_free]
        if use is None:
            free_part = by_person[:, is_free] @ rows[is_free]
    w, loglik = _posterior(log_weights[None, :] + others + free_part)
    n, r = _expected_counts(right_wrong, w)
    if partial is not None and partial.free.any():
        categories = category_counts(partial.free_data(n_persons), w)
    products = None if information is None else score_products(right_wrong, est, nodes, w, *information)
    across = None
    if information is not None and cross is not None and partial is not None and partial.free.any():
        layout, vec, scale = cross
        across = cross_information(right_wrong, est, information[0], information[1], partial.free_data(n_persons),
                                   layout, vec, nodes, w, scale)
    return ExpectedCounts(n, r, w.sum(axis=0), loglik, n_persons, products, categories), others, across
