"""Stopping rules: when an adaptive test has measured enough.

Each rule is a vectorised test over rows of examinees, registered in precedence order with
:func:`stopping_rule`; :func:`check_stop` returns, per row, the name of the first rule that fires.
A new rule is one decorated function here (or in any module imported before the first step); no
other rule changes.

* ``max_items``: the test length cap (always on).
* ``bank_exhausted``: no operational item left to serve (always on).
* ``se_threshold``: SE(theta_hat) <= the target (Weiss & Kingsbury 1984; fixed precision).
* ``theta_change``: |theta_hat - theta_hat before the last answer| < the threshold
  (Babcock & Weiss 2012).
* ``classification``: the examinee is classified against every cut, by confidence interval
  (Kingsbury & Weiss 1983) or by SPRT (Reckase 1983; Eggen 1999).

The last three fire only once ``min_items`` scored answers are in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .config import CatConfig, Classification
from .state import Bank, CatState, eligible_operational

NOT_STOPPED = ""

Fires = Callable[[CatState, Bank, CatConfig, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class StoppingRule:
    """A named rule: ``fires(state, bank, config, rows)`` is a bool per row; ``active(config)``
    says whether the test's policy uses it; ``after_min_items`` holds it back until the policy's
    minimum number of scored answers is in."""

    name: str
    fires: Fires
    active: Callable[[CatConfig], bool]
    after_min_items: bool


STOPPING_RULES: dict[str, StoppingRule] = {}


def stopping_rule(name: str, *, active: Callable[[CatConfig], bool] = lambda config: True,
                  after_min_items: bool = True) -> Callable[[Fires], Fires]:
    """Register a rule under ``name``, after the ones registered before it (its precedence)."""

    def register(fires: Fires) -> Fires:
        if name in STOPPING_RULES:
            raise ValueError(f"stopping rule {name!r} is registered twice")
        STOPPING_RULES[name] = StoppingRule(name, fires, active, after_min_items)
        return fires

    return register


def check_stop(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray) -> np.ndarray:
    """The first stopping rule that fires for each row (in registration order), or ``""``."""
    reason = np.full(rows.size, NOT_STOPPED, dtype=object)
    enough = state.n_scored[rows] >= max(config.min_items, 1)
    for rule in STOPPING_RULES.values():
        if not rule.active(config):
            continue
        open_rows = reason == NOT_STOPPED
        if rule.after_min_items:
            open_rows &= enough
        if not open_rows.any():
            continue
        reason[open_rows & np.asarray(rule.fires(state, bank, config, rows))] = rule.name
    return reason


@stopping_rule("max_items", after_min_items=False)
def _max_items(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray) -> np.ndarray:
    out: np.ndarray = state.n_scored[rows] >= config.max_items
    return out


@stopping_rule("bank_exhausted", after_min_items=False)
def _bank_exhausted(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray) -> np.ndarray:
    return np.asarray(~eligible_operational(state, bank, rows).any(axis=1))


@stopping_rule("se_threshold", active=lambda config: config.se_threshold is not None)
def _se_threshold(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray) -> np.ndarray:
    assert config.se_threshold is not None
    out: np.ndarray = state.se[rows] <= config.se_threshold
    return out


@stopping_rule("theta_change", active=lambda config: config.theta_change is not None)
def _theta_change(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray) -> np.ndarray:
    assert config.theta_change is not None
    moved = np.abs(state.theta[rows] - state.theta_before[rows])
    out: np.ndarray = (state.n_scored[rows] >= 2) & (moved < config.theta_change)
    return out


@stopping_rule("classification", active=lambda config: config.classification is not None)
def _classification(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray) -> np.ndarray:
    assert config.classification is not None
    return classified(state, bank, rows, config.classification)


def classified(state: CatState, bank: Bank, rows: np.ndarray, rule: Classification) -> np.ndarray:
    """Whether each row is classified against every cut of ``rule`` (see :class:`Classification`)."""
    out: np.ndarray = np.ones(rows.size, dtype=bool)
    if rule.method == "ci":
        half = rule.z * state.se[rows]
        th = state.theta[rows]
        for cut in rule.cuts:
            out &= (th - half > cut) | (th + half < cut)
        return out
    x = state.scored_resp[rows]
    upper = np.log((1 - rule.beta) / rule.alpha)
    lower = np.log(rule.beta / (1 - rule.alpha))
    for cut in rule.cuts:
        ll = bank.pattern_log_likelihood(state.scored_items[rows], x, np.array([cut - rule.delta, cut + rule.delta]))
        lr = ll[:, 1] - ll[:, 0]
        out &= (lr >= upper) | (lr <= lower)
    return out
