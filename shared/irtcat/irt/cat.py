"""The adaptive-test step: estimate, stop or go on, choose the next item.

One implementation serves the live per-answer path (a batch of one examinee) and the simulator
(thousands at once): every function works on a :class:`~.state.CatState` holding one row per
examinee, restricted to the row indices it is given.

Order of a step (the state machine's order): :func:`record_answer` (score, re-estimate) ->
:func:`.stopping.check_stop` -> :func:`.selection.select_next` when the test goes on.
"""

from __future__ import annotations

import numpy as np

from .config import CatConfig
from .estimation import eap_from_log_posterior, eap_point, estimate
from .state import PRETEST, Bank, CatState, pattern_items


def record_answer(
    state: CatState,
    bank: Bank,
    config: CatConfig,
    rows: np.ndarray,
    items: np.ndarray,
    responses: np.ndarray,
) -> None:
    """Apply one answer per row: pretest answers are recorded, scored answers re-estimate theta.

    EAP is updated incrementally: log posterior += log P(x | nodes) for the new item.
    """
    state.administered[rows, items] = True
    state.n_served[rows] += 1
    scored = bank.status[items] != PRETEST
    r, it, x = rows[scored], items[scored], responses[scored].astype(np.int64)
    if r.size == 0:
        return
    if np.any(state.n_scored[r] >= config.max_items):
        raise ValueError("a scored answer beyond max_items")
    state.scored_items[r, state.n_scored[r]] = it
    state.scored_resp[r, state.n_scored[r]] = x
    state.n_scored[r] += 1
    np.add.at(state.area_counts, (r, bank.area[it]), 1)
    state.log_post[r] += bank.loglik_table(config.quadrature)[it, x]
    state.theta_before[r] = state.theta[r]
    if config.estimator == "EAP":
        q = config.quadrature
        if r.size == 1:  # the live path: one examinee, scalar arithmetic
            th, sd = eap_point(state.log_post[r[0]], q.nodes, q.nodes_sq)
            theta, se = np.array([th]), np.array([sd])
        else:
            theta, se = eap_from_log_posterior(state.log_post[r], q.nodes)
    else:
        est = estimate(
            config.estimator, state.scored_resp[r], pattern_items(state, bank, r),
            config.prior, config.quadrature,
        )
        theta, se = est.theta, est.se
    state.theta[r] = theta
    state.se[r] = se


def restore(
    bank: Bank,
    config: CatConfig,
    served: np.ndarray,
    scored_items: np.ndarray,
    responses: np.ndarray,
    theta0: float,
) -> CatState:
    """One examinee's state from a stored session, estimating only twice (not once per answer).

    ``served`` are all items served (pretest included); ``scored_items``/``responses`` the
    scored answers in order. theta is estimated from all answers and ``theta_before`` from all
    but the last, exactly as :func:`record_answer` would have left them.
    """
    state = CatState.start(1, bank, config, theta0=np.array([theta0]))
    state.administered[0, served] = True
    state.n_served[0] = served.size
    k = scored_items.size
    if k > config.max_items:
        raise ValueError("more scored answers than max_items")
    if k == 0:
        return state
    x = responses.astype(np.int64)
    state.scored_items[0, :k] = scored_items
    state.scored_resp[0, :k] = x
    state.n_scored[0] = k
    np.add.at(state.area_counts[0], bank.area[scored_items], 1)
    rows = bank.loglik_table(config.quadrature)[scored_items, x]  # (k, nodes)
    state.log_post[0] += rows.sum(axis=0)
    if config.estimator == "EAP":
        before = state.log_post[0] - rows[-1]
        th, se = eap_from_log_posterior(np.stack([state.log_post[0], before]), config.quadrature.nodes)
        state.theta[0], state.se[0] = th[0], se[0]
        state.theta_before[0] = th[1] if k > 1 else theta0
    else:
        pattern = np.stack([state.scored_resp[0], state.scored_resp[0]])
        pattern[1, k - 1] = np.nan
        est = estimate(config.estimator, pattern, pattern_items(state, bank, np.array([0, 0])),
                       config.prior, config.quadrature)
        state.theta[0], state.se[0] = est.theta[0], est.se[0]
        state.theta_before[0] = est.theta[1] if k > 1 else theta0
    return state
