"""Whether a session was answered in earnest: each answer's time, rapid guesses, response-time
effort and person fit (the maths: :mod:`irtcat.irt.health.personfit`).

* An answer's time is the tablet's ``response_time_ms`` bounded above by the server's own
  measure, from the commit that served the item to the step that applies the answer (a tablet
  may claim less, which only hurts it, never more; without a claim, the server's measure).
* An item's rapid-guess threshold is NT10 (10% of its typical time, at most 10 s) from its
  ``mean_log_seconds``, which calibration writes; an item without one takes the median of the
  bank's items that have one; a bank with none has no thresholds, and no answer is judged rapid.
* FinishSession computes lz* at the final estimate over the scored right/wrong answers (at
  least 5; the policy's prior enters as the estimator's term) and response-time effort over the
  timed answers; ``flags`` names what fell short: ``person_fit`` (lz* below the one-sided .05
  value) and ``effort`` (effort below 0.90).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from ..irt.health.personfit import EFFORT_FLOOR, lz_star, lz_star_categories, misfitting, rapid_thresholds
from .bank import ItemBank

MIN_PERSON_FIT_ITEMS = 5


def answer_seconds(tablet_ms: int | None, served_at: datetime, applied_at: datetime) -> float:
    """The bounded time of one answer (module docstring), in seconds."""
    server = max((applied_at - served_at).total_seconds(), 0.0)
    return server if tablet_ms is None else min(tablet_ms / 1000.0, server)


def rapid_threshold(bank: ItemBank, item_id: str) -> float | None:
    """The item's NT10 threshold in seconds (None: the bank has no response times yet)."""
    item = bank.item(item_id)
    typical = item.mean_log_seconds if item is not None else None
    if typical is None:
        typical = bank.median_log_seconds
        if typical is None:
            return None
    return float(rapid_thresholds(np.array([typical]))[0])


def is_rapid(bank: ItemBank, item_id: str, seconds: float | None) -> bool:
    """Whether an answer of ``seconds`` to the item is a rapid guess."""
    if seconds is None:
        return False
    threshold = rapid_threshold(bank, item_id)
    return threshold is not None and seconds < threshold


def _category_curves(engine: Any, idx: np.ndarray, positions: np.ndarray, partial: np.ndarray, theta: float
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each item's category probabilities and their derivatives at ``theta`` (a right/wrong item:
    [1 - P, P] and [-P', P'])."""
    from ..irt.model import prob, prob_derivatives
    from ..irt.polytomous import category_derivatives

    t = np.array([theta], float)
    p = prob(t[:, None], engine.params.subset(idx))[0]
    dp = prob_derivatives(t[:, None], engine.params.subset(idx))[1][0]
    probs, derivs = [], []
    poly_p, poly_d = category_derivatives(t, engine.poly)
    categories = engine.poly.categories
    for k in range(idx.size):
        if partial[k]:
            m = int(categories[positions[k]])
            probs.append(poly_p[0, positions[k], :m])
            derivs.append(poly_d[0, positions[k], :m])
        else:
            probs.append(np.array([1 - p[k], p[k]]))
            derivs.append(np.array([-dp[k], dp[k]]))
    return probs, derivs


def session_checks(served: list[tuple[str, int, float | None, bool]], theta: float, prior: tuple[float, float],
                   bank: ItemBank) -> dict[str, object]:
    """``served``: (item_id, score, seconds, scored) per answered item. Returns ``person_fit``
    (lz*, or None with too few right/wrong answers), ``effort`` (None without timed answers),
    ``rapid_guesses`` and ``flags``."""
    engine = bank.engine
    rapid = [is_rapid(bank, item_id, seconds) for item_id, _, seconds, _ in served]
    timed = [s for s in served if s[2] is not None]
    effort = 1.0 - sum(rapid) / len(timed) if timed else None
    answers = [(engine.index[i], x) for i, x, _, scored in served if scored and i in engine.index]
    person_fit = None
    if len(answers) >= MIN_PERSON_FIT_ITEMS:
        idx = np.array([j for j, _ in answers])
        x = np.array([v for _, v in answers])
        positions, partial = engine.poly_positions(idx)
        if not partial.any():
            value = lz_star(x, engine.params.subset(idx), theta, prior)
        else:  # partial-credit items among them: lz* over every item's categories
            value = lz_star_categories(x, *_category_curves(engine, idx, positions, partial, theta), theta, prior)
        person_fit = None if np.isnan(value) else round(float(value), 3)
    flags = []
    if person_fit is not None and misfitting(person_fit):
        flags.append("person_fit")
    if effort is not None and effort < EFFORT_FLOOR:
        flags.append("effort")
    return {"person_fit": person_fit, "effort": None if effort is None else round(effort, 3),
            "rapid_guesses": int(sum(rapid)), "flags": flags}
