"""The adaptive-test step: estimate, stop or go on, choose the next item.

One implementation serves the live per-answer path (a batch of one examinee) and the simulator
(thousands at once): every function works on a :class:`CatState` holding one row per examinee,
restricted to the row indices it is given.

Order of a step (the state machine's order): :func:`record_answer` (score, re-estimate) ->
:func:`check_stop` -> :func:`select_next` when the test goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .estimation import (
    Estimator,
    NormalPrior,
    Quadrature,
    eap_from_log_posterior,
    eap_point,
    estimate,
    pattern_log_likelihood,
)
from .model import FloatArray, ItemParameters, log_likelihood_table
from .selection import (
    PeakIndex,
    b_blocked_strata,
    kl_information,
    max_information,
    pick,
    pick_from_top,
    stratified_closeness,
    top_information,
)

OPERATIONAL, PRETEST, RETIRED = 0, 1, 2
STATUS_CODES = {"operational": OPERATIONAL, "pretest": PRETEST, "retired": RETIRED}
SelectionRule = Literal["max_info", "kl", "a_stratified", "random"]
StopRule = Literal[
    "max_items", "bank_exhausted", "se_threshold", "theta_change", "classification"
]
NOT_STOPPED = ""


@dataclass(frozen=True)
class Classification:
    """Stop once the examinee is classified against every cut in ``cuts`` (one cut: pass/fail;
    several: a proficiency level).

    ``ci``: theta_hat +- z SE excludes every cut (Kingsbury & Weiss 1983; with several cuts the
    interval then lies inside one level).
    ``sprt``: Wald's SPRT on L(cut + delta) / L(cut - delta) with error rates alpha and beta,
    decided for every cut (Reckase 1983; Eggen 1999; Eggen & Straetmans 2000 for several cuts).
    """

    cuts: tuple[float, ...]
    method: Literal["ci", "sprt"] = "ci"
    z: float = 1.96
    delta: float = 0.3
    alpha: float = 0.05
    beta: float = 0.05


@dataclass(frozen=True)
class CatConfig:
    """Everything a test's policy decides, in plain types (the domain's TestPolicy maps to it)."""

    estimator: Estimator = "EAP"
    prior: NormalPrior = field(default_factory=NormalPrior)
    quadrature: Quadrature = field(default_factory=Quadrature)
    selection: SelectionRule = "max_info"
    randomesque: int = 5
    strata: int = 4
    sympson_hetter: bool = False
    content_targets: dict[str, float] = field(default_factory=dict)
    se_threshold: float | None = 0.3
    min_items: int = 5
    max_items: int = 30
    theta_change: float | None = None
    classification: Classification | None = None
    pretest_positions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.min_items < 0 or self.max_items < 1 or self.min_items > self.max_items:
            raise ValueError("need 0 <= min_items <= max_items and max_items >= 1")
        if self.randomesque < 1 or self.strata < 1:
            raise ValueError("randomesque and strata must be >= 1")
        if any(p < 1 for p in self.pretest_positions):
            raise ValueError("pretest positions are 1-based")
        total = sum(self.content_targets.values())
        if self.content_targets and (min(self.content_targets.values()) < 0 or total <= 0):
            raise ValueError("content targets must be non-negative with a positive sum")


class Bank:
    """A bank's parameters and metadata as arrays, with per-quadrature caches.

    Build one per bank version and keep it for the life of the process (the Lambda container).
    """

    def __init__(
        self,
        params: ItemParameters,
        status: np.ndarray | None = None,
        content: list[str] | None = None,
        exposure_k: FloatArray | None = None,
        item_ids: list[str] | None = None,
    ) -> None:
        n = len(params)
        self.params = params
        self.status = np.zeros(n, dtype=np.int8) if status is None else np.asarray(status, np.int8)
        areas = content if content is not None else [""] * n
        self.area_names = sorted(set(areas))
        self.area = np.array([self.area_names.index(x) for x in areas], dtype=np.int64)
        self.exposure_k = np.ones(n) if exposure_k is None else np.asarray(exposure_k, np.float64)
        self.item_ids = item_ids if item_ids is not None else [f"i{j:05d}" for j in range(n)]
        self.index = {item_id: j for j, item_id in enumerate(self.item_ids)}
        if len(self.index) != n:
            raise ValueError("item ids must be unique")
        if not (self.status.shape == self.area.shape == self.exposure_k.shape == (n,)):
            raise ValueError("status, content and exposure arrays must have one entry per item")
        self.operational = self.status == OPERATIONAL
        self.pretest = self.status == PRETEST
        # float32 copy for ranking items: twice as fast, and ranks don't need float64
        self.params32 = params.astype(np.float32)
        # items by decreasing peak information, for the exact pruned max-info scan (d = 1 only)
        self.prunable = bool(np.all(params.d == 1.0))
        self.peak_index = PeakIndex.build(params) if self.prunable and n > 1000 else None
        self._tables: dict[Quadrature, FloatArray] = {}
        self._strata: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.params)

    def loglik_table(self, quadrature: Quadrature) -> FloatArray:
        """Cached ``log P(x | node)`` table, shape (items, 2, nodes)."""
        table = self._tables.get(quadrature)
        if table is None:
            table = self._tables[quadrature] = log_likelihood_table(self.params, quadrature.nodes)
        return table

    def strata(self, n_strata: int) -> np.ndarray:
        """Cached a-stratified/b-blocked stratum per item (-1 for non-operational items)."""
        s = self._strata.get(n_strata)
        if s is None:
            s = self._strata[n_strata] = b_blocked_strata(
                self.params.a, self.params.b, self.operational, n_strata
            )
        return s


@dataclass
class CatState:
    """Rows of examinees in the middle of an adaptive test."""

    theta: FloatArray
    se: FloatArray
    theta_before: FloatArray
    log_post: FloatArray  # (n, nodes): log prior + log likelihood of the scored answers
    administered: np.ndarray  # (n, items) bool: every item served, pretest included
    blocked: np.ndarray  # (n, items) bool: lost a Sympson-Hetter lottery in this test
    scored_items: np.ndarray  # (n, max_items) int, -1 padded
    scored_resp: FloatArray  # (n, max_items) float, NaN padded
    n_scored: np.ndarray
    n_served: np.ndarray
    area_counts: np.ndarray  # (n, areas) scored items per content area

    @classmethod
    def start(
        cls, n: int, bank: Bank, config: CatConfig, theta0: FloatArray | None = None
    ) -> CatState:
        """Fresh state: theta from ``theta0`` (e.g. the student's last ability) or the prior."""
        prior = config.prior
        log_prior = config.quadrature.log_prior(prior)
        theta = np.full(n, prior.mean) if theta0 is None else np.asarray(theta0, np.float64).copy()
        return cls(
            theta=theta,
            se=np.full(n, prior.sd),
            theta_before=theta.copy(),
            log_post=np.tile(log_prior, (n, 1)),
            administered=np.zeros((n, len(bank)), dtype=bool),
            blocked=np.zeros((n, len(bank)), dtype=bool),
            scored_items=np.full((n, config.max_items), -1, dtype=np.int64),
            scored_resp=np.full((n, config.max_items), np.nan),
            n_scored=np.zeros(n, dtype=np.int64),
            n_served=np.zeros(n, dtype=np.int64),
            area_counts=np.zeros((n, len(bank.area_names)), dtype=np.int64),
        )


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
            config.estimator, state.scored_resp[r], _pattern_items(state, bank, r),
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
        est = estimate(config.estimator, pattern, _pattern_items(state, bank, np.array([0, 0])),
                       config.prior, config.quadrature)
        state.theta[0], state.se[0] = est.theta[0], est.se[0]
        state.theta_before[0] = est.theta[1] if k > 1 else theta0
    return state


def _pattern_items(state: CatState, bank: Bank, rows: np.ndarray) -> ItemParameters:
    idx = np.maximum(state.scored_items[rows], 0)
    p = bank.params
    return ItemParameters(p.a[idx], p.b[idx], p.c[idx], p.d[idx], p.scale)


def eligible_operational(state: CatState, bank: Bank, rows: np.ndarray) -> np.ndarray:
    """Operational items not yet served and not blocked, per row: (rows, items) bool."""
    out: np.ndarray = bank.operational[None, :] & ~state.administered[rows] & ~state.blocked[rows]
    return out


def _classified(state: CatState, bank: Bank, rows: np.ndarray, rule: Classification) -> np.ndarray:
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
        ll = pattern_log_likelihood(
            np.nan_to_num(x), ~np.isnan(x), _pattern_items(state, bank, rows),
            np.array([cut - rule.delta, cut + rule.delta]),
        )
        lr = ll[:, 1] - ll[:, 0]
        out &= (lr >= upper) | (lr <= lower)
    return out


def check_stop(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray) -> np.ndarray:
    """The first stopping rule that fires for each row, or ``""`` to go on.

    Precedence: max_items, bank_exhausted (always), then only once min_items scored items are
    in: se_threshold, theta_change, classification.
    """
    n = state.n_scored[rows]
    reason = np.full(rows.size, NOT_STOPPED, dtype=object)

    def fire(cond: np.ndarray | np.bool_, name: str) -> None:
        reason[(reason == NOT_STOPPED) & np.asarray(cond)] = name

    fire(n >= config.max_items, "max_items")
    fire(~eligible_operational(state, bank, rows).any(axis=1), "bank_exhausted")
    enough = n >= max(config.min_items, 1)
    if config.se_threshold is not None:
        fire(enough & (state.se[rows] <= config.se_threshold), "se_threshold")
    if config.theta_change is not None:
        moved = np.abs(state.theta[rows] - state.theta_before[rows])
        fire(enough & (n >= 2) & (moved < config.theta_change), "theta_change")
    if config.classification is not None:
        fire(enough & _classified(state, bank, rows, config.classification), "classification")
    return reason


def _content_filter(
    state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray, eligible: np.ndarray
) -> np.ndarray:
    """Kingsbury & Zara (1989): restrict to the area furthest below its target share."""
    names = bank.area_names
    target = np.array([config.content_targets.get(a, 0.0) for a in names])
    target = target / target.sum()
    counts = state.area_counts[rows]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    deficit = target[None, :] - share
    area_open = np.stack([(eligible & (bank.area == k)).any(axis=1) for k in range(len(names))], axis=1)
    deficit = np.where(area_open & (target[None, :] > 0), deficit, -np.inf)
    best = deficit.argmax(axis=1)
    keep = np.isfinite(deficit.max(axis=1))
    restricted = eligible & (bank.area[None, :] == best[:, None])
    return np.where(keep[:, None], restricted, eligible)


def _criterion(
    state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray, eligible: np.ndarray,
    rng: np.random.Generator,
) -> FloatArray:
    theta = state.theta[rows]
    if config.selection == "max_info":
        crit = max_information(theta, bank.params32)
    elif config.selection == "kl":
        crit = kl_information(theta, state.n_scored[rows], bank.params32)
    elif config.selection == "a_stratified":
        strata = bank.strata(config.strata)
        stage = np.minimum(state.n_scored[rows] * config.strata // config.max_items, config.strata - 1)
        in_stage = strata[None, :] == stage[:, None]
        # when the stage's stratum has run dry, fall back to any eligible item
        in_stage &= eligible
        in_stage |= ~in_stage.any(axis=1, keepdims=True) & eligible
        eligible = in_stage
        crit = stratified_closeness(theta, bank.params.b)
    elif config.selection == "random":
        crit = rng.random((rows.size, len(bank)))
    else:
        raise ValueError(f"unknown selection rule {config.selection!r}")
    out: FloatArray = np.where(eligible, crit, np.float32(-np.inf))
    return out


def select_next(
    state: CatState,
    bank: Bank,
    config: CatConfig,
    rows: np.ndarray,
    rng: np.random.Generator,
    selected_counter: np.ndarray | None = None,
) -> np.ndarray:
    """Index of the next item per row (-1 when nothing is left).

    At a configured pretest position a random unseen pretest item is served (never scored);
    otherwise the selection rule picks among eligible operational items, after content
    balancing, with randomesque-k, and with the Sympson-Hetter lottery when enabled (an item
    that loses the lottery is blocked for the rest of that test; Sympson & Hetter 1985).
    ``selected_counter`` (per item) counts how often each item won selection before the
    lottery, which is what the exposure-parameter simulation needs.
    """
    choice = np.full(rows.size, -1, dtype=np.int64)
    position = state.n_served[rows] + 1
    if config.pretest_positions and bank.pretest.any():
        wants = np.isin(position, config.pretest_positions)
        if wants.any():
            pre = bank.pretest[None, :] & ~state.administered[rows[wants]]
            crit = np.where(pre, rng.random(pre.shape), -np.inf)
            choice[wants] = pick(crit, 1, rng)
    todo = np.flatnonzero(choice < 0)
    peak_index = bank.peak_index
    pruned = (config.selection == "max_info" and rows.size == 1 and peak_index is not None
              and not config.content_targets)
    for _ in range(len(bank)):
        if todo.size == 0:
            break
        sub = rows[todo]
        if pruned and peak_index is not None:
            # one examinee on a large bank: exact top-k without scoring (or masking) every item
            r = int(sub[0])
            admin, blocked, ops = state.administered[r], state.blocked[r], bank.operational

            def ok(idx: np.ndarray, ops: np.ndarray = ops, admin: np.ndarray = admin,
                   blocked: np.ndarray = blocked) -> np.ndarray:
                out: np.ndarray = ops[idx] & ~admin[idx] & ~blocked[idx]
                return out

            top = top_information(float(state.theta[r]), peak_index, ok, config.randomesque)
            cand = pick_from_top(top[None, :], rng)
        else:
            eligible = eligible_operational(state, bank, sub)
            if config.content_targets:
                eligible = _content_filter(state, bank, config, sub, eligible)
            crit = _criterion(state, bank, config, sub, eligible, rng)
            cand = pick(crit, config.randomesque, rng)
        found = cand >= 0
        if selected_counter is not None:
            np.add.at(selected_counter, cand[found], 1)
        if not config.sympson_hetter:
            choice[todo] = cand
            break
        accept = ~found | (rng.random(todo.size) <= bank.exposure_k[np.maximum(cand, 0)])
        choice[todo[accept]] = cand[accept]
        lost = ~accept
        state.blocked[sub[lost], cand[lost]] = True
        todo = todo[lost]
    return choice
