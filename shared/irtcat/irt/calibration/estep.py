"""The E-step (Bock & Aitkin 1981) of a run with right/wrong and partial-credit items: each
person's posterior over the nodes from every answer they gave,
log w_pq = log g_q + sum over right/wrong items of log P_i(x_pi | t_q) + sum over
partial-credit items of log P_{i,x}(t_q) (+ the log-likelihood of answers to items held fixed),
and the expected counts it implies. A sum over persons: shards of persons add up."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import sparse

from ..model import FloatArray
from ..polytomous import PolytomousItems, log_likelihood_table
from .data import CalibModel, CategoryData, ExpectedCounts, ItemEstimates, ResponseData, posterior
from .partial_credit import Layout, answer_scores, category_counts
from .right_wrong import log_posterior, param_count, response_function, score_products


def expected_counts(data: ResponseData, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """n_iq and r_iq: the E-step's sufficient statistics, (items, nodes) each."""
    n: FloatArray = np.asarray(data.answered_t @ w)
    r: FloatArray = np.asarray(data.right_t @ w)
    return n, r



def e_step(data: ResponseData, est: ItemEstimates, nodes: FloatArray, log_weights: FloatArray,
           use: np.ndarray | None = None,
           information: tuple[CalibModel, np.ndarray] | None = None,
           anchors: FloatArray | None = None) -> ExpectedCounts:
    """:func:`joint_e_step` of right/wrong answers alone: posterior weights w_pq at ``est``
    (``use``: only these items inform the posterior, as in OEM) and their expected counts
    n_iq, r_iq; ``information=(model, free)`` adds the score products of the free items'
    parameters (:func:`.right_wrong.score_products`)."""
    return joint_e_step(data, est, nodes, log_weights, None, use, information, anchors=anchors)[0]


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
    k = param_count(model)
    idx = np.flatnonzero(free)
    out = np.zeros((idx.size * k, layout.size))
    persons = np.unique(partial.person)
    if idx.size == 0 or persons.size == 0:
        return out
    p, jac, _ = response_function(est.a[idx], est.b[idx], est.c[idx], nodes, k)
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



@dataclass
class PartialAnswers:
    """Answers to partial-credit items, for :func:`joint_e_step`: ``items`` holds every
    partial-credit item of the run at its current values, ``free`` marks the estimated ones;
    per answer the person, the item (its position in ``items``) and the category. What does not
    change between cycles (the answers' indicator matrices) is built once and shared by
    :meth:`at`."""

    items: PolytomousItems
    free: np.ndarray
    person: np.ndarray
    item: np.ndarray
    category: np.ndarray
    n_persons: int
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def estimated(cls, data: CategoryData, items: PolytomousItems) -> PartialAnswers:
        """``data``'s answers, every item estimated, ``items`` their current values."""
        return cls(items, np.ones(data.n_items, dtype=bool), data.person, data.item, data.category,
                   data.n_persons, {"free_data": data})

    def at(self, items: PolytomousItems) -> PartialAnswers:
        """The same answers with the items at other values."""
        return replace(self, items=items, cache=self.cache)

    def free_data(self) -> CategoryData:
        """The answers to the free items (numbered among themselves), each item with the
        categories it states: a shard need not have seen them all."""
        if "free_data" not in self.cache:
            position = np.cumsum(self.free) - 1
            rows = self.free[self.item]
            self.cache["free_data"] = CategoryData(self.person[rows], position[self.item[rows]], self.category[rows],
                                                   self.n_persons, int(self.free.sum()),
                                                   self.items.categories[self.free])
        data: CategoryData = self.cache["free_data"]
        return data

    def indicators(self, width: int) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """Persons x (items * ``width``) indicators of the answers to fixed and to free items:
        times the items' log-likelihood table, (items * width) x nodes, each gives every
        person's log-likelihood of those answers."""
        if self.cache.get("width") != width:
            cols = self.item * width + self.category
            is_free = self.free[self.item]
            shape = (self.n_persons, self.free.size * width)

            def indicator(rows: np.ndarray) -> sparse.csr_matrix:
                return sparse.csr_matrix((np.ones(int(rows.sum())), (self.person[rows], cols[rows])), shape=shape)

            self.cache["width"], self.cache["indicators"] = width, (indicator(~is_free), indicator(is_free))
        out: tuple[sparse.csr_matrix, sparse.csr_matrix] = self.cache["indicators"]
        return out


def joint_e_step(right_wrong: ResponseData | None, est: ItemEstimates, nodes: FloatArray, log_weights: FloatArray,
                 partial: PartialAnswers | None = None, use: np.ndarray | None = None,
                 information: tuple[CalibModel, np.ndarray] | None = None,
                 cross: tuple[Layout, FloatArray, float] | None = None, anchors: FloatArray | None = None
                 ) -> tuple[ExpectedCounts, FloatArray | None, FloatArray | None]:
    """One E-step over a set of persons: the posterior from every answer (``use``: only those
    right/wrong items, and then no free partial-credit item, inform it: OEM; ``anchors``,
    persons x nodes: the log-likelihood of answers to items outside the run), the right/wrong
    items' n_iq and r_iq, the free partial-credit items' expected category counts, and with
    ``information`` the right/wrong score products. Also returns each person's log-likelihood
    of every answer but those to free partial-credit items (persons x nodes): what their
    standard errors take as anchors (with ``information`` only). With ``information`` and ``cross`` (the free
    partial-credit items' layout, vector and scale) also these persons' part of the
    information across the families (:func:`cross_information`; a sum over persons, so shards
    add up)."""
    n_persons = right_wrong.n_persons if right_wrong is not None else partial.n_persons  # type: ignore[union-attr]
    if right_wrong is not None:
        log_post = log_posterior(right_wrong, est, nodes, log_weights, use)
    else:
        log_post = np.repeat(log_weights[None, :], n_persons, axis=0)
    if anchors is not None:
        log_post += anchors
    free_part: FloatArray | None = None
    categories = fixed_categories = None
    to_fixed = None
    if partial is not None:
        table = log_likelihood_table(partial.items, nodes)  # (items, K, Q)
        table = np.where(np.isneginf(table), 0.0, table).reshape(-1, nodes.size)  # never-indexed cells: 0
        to_fixed, to_free = partial.indicators(table.shape[0] // partial.free.size)
        if to_fixed.nnz:
            log_post += to_fixed @ table
        if use is None and to_free.nnz:
            free_part = to_free @ table
    others = log_post - log_weights[None, :] if information is not None else None
    if free_part is not None:
        log_post += free_part
    w, loglik = posterior(log_post)
    if right_wrong is not None:
        n, r = expected_counts(right_wrong, w)
    else:
        n, r = np.zeros((0, nodes.size)), np.zeros((0, nodes.size))
    if partial is not None and partial.free.any():
        categories = category_counts(partial.free_data(), w)
    if information is not None and to_fixed is not None:  # every shard has them (zeros where none answered)
        fixed_categories = np.asarray(to_fixed.T @ w)  # (items x width) x nodes: each fixed answer's posterior
    products = None if information is None or right_wrong is None else \
        score_products(right_wrong, est, nodes, w, *information)
    across = None
    if (information is not None and cross is not None and partial is not None and partial.free.any()
            and right_wrong is not None):
        layout, vec, scale = cross
        across = cross_information(right_wrong, est, information[0], information[1], partial.free_data(),
                                   layout, vec, nodes, w, scale)
    return (ExpectedCounts(n, r, w.sum(axis=0), loglik, n_persons, products, categories, fixed_categories), others,
            across)
