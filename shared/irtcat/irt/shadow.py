"""Shadow-test item selection (van der Linden & Reese 1998; van der Linden 2005, ch. 9).

Before each item, assemble a full-length test that contains the items already given, meets every
constraint of the blueprint and has maximum information at the current theta; serve its most
informative unused item. The assembly is a 0-1 integer program, solved with HiGHS (``highspy``):

    max  sum_i (I_i(theta) - price_i) x_i  -  penalties
    s.t. sum_i x_i = L;  x_i = 1 for the items given;  x_i = 0 for the items not allowed
         lo_r - s_r <= sum_{i in r} x_i <= hi_r + t_r        for each count rule r
         sum_i w_i x_i <= hi_s + t_s  (and >= lo_s - s_s)    for each sum rule s
         sum_{i in e} x_i <= 1                              for each enemy set e (never relaxed)
         m_p z_p <= sum_{i in p} x_i <= M_p z_p,  sum_p z_p <= K   for passages p (sets)

Nothing here is ever infeasible while L items can be found: the slacks s, t are penalised so that
the solver gives way in a fixed order: first exposure eligibility (an item the examinee's
eligibility draw excluded carries a price of ELIGIBILITY_PENALTY, so it enters the test only when
no eligible item can take its place), then a sum rule (per unit), then a count rule (per item, a
much larger penalty); enemies and the length never. The rules that gave way are returned with by
how much (``exposure``: the ineligible items the test had to take).

Speed: the problem is built over a candidate set (the items given, the most informative allowed
items of every constrained group, and the items of passages in play), falling back to every
allowed item when the candidates cannot meet the rules without relaxing; the previous shadow test
is passed as a starting solution, and a time limit keeps the best test found. HiGHS's presolve is
off: on these small programs it costs more than it saves (1,800 selections on the 1,000-item
benchmark bank: 17.6 s with it, 9.7 s without, the same tests chosen).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .model import FloatArray

# penalties per unit of relaxation, in information units (an item's information is at most ~10)
ELIGIBILITY_PENALTY = 1e3
SUM_PENALTY = 1e5
COUNT_PENALTY = 1e7
EXPOSURE_RULE = "exposure"


@dataclass(frozen=True)
class CountRule:
    """``lo <= (items in ``members``) <= hi`` (a blueprint's attribute rule); ``name`` says which."""

    name: str
    members: np.ndarray  # bool per item
    lo: int = 0
    hi: int | None = None


@dataclass(frozen=True)
class SumRule:
    """``lo <= sum of weights over the test <= hi`` (e.g. expected seconds)."""

    name: str
    weights: FloatArray
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class SetRule:
    """Items sharing a set id (a passage) come together: 0 or between ``items_min`` and
    ``items_max`` of a set's items, at most ``max_sets`` sets. ``set_of``: set index per item,
    -1 for an item in no set."""

    set_of: np.ndarray
    items_min: int = 1
    items_max: int | None = None
    max_sets: int | None = None


@dataclass(frozen=True)
class ShadowSpec:
    """A blueprint compiled against one bank (arrays over its items)."""

    length: int
    counts: tuple[CountRule, ...] = ()
    sums: tuple[SumRule, ...] = ()
    enemies: tuple[np.ndarray, ...] = ()  # item positions per enemy set
    sets: SetRule | None = None
    time_limit: float = 0.05  # seconds per solve; the best test found by then is used
    candidates_per_group: int = 0  # 0: build over every allowed item


@dataclass
class ShadowTest:
    """An assembled test: its items, the objective, and the rules that gave way."""

    items: np.ndarray
    relaxed: list[tuple[str, float]] = field(default_factory=list)
    candidates: int = 0
    full: bool = False


_SOLVERS = threading.local()


def _highs() -> Any:
    """One HiGHS instance per thread, reused (its model is replaced by each solve). HiGHS prints
    a banner to the process's stdout when an instance is made: it goes to /dev/null instead."""
    h = getattr(_SOLVERS, "highs", None)
    if h is None:
        import highspy

        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()  # type: ignore[no-untyped-call]
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.setOptionValue("presolve", "off")
        _SOLVERS.highs = h
    return h


def assemble(spec: ShadowSpec, info: FloatArray, given: np.ndarray, allowed: np.ndarray,
             price: FloatArray | None = None, previous: np.ndarray | None = None,
             ineligible: np.ndarray | None = None) -> ShadowTest:
    """The shadow test at one theta.

    ``info``: each item's information at theta; ``given``: positions already in the test (kept);
    ``allowed``: bool per item (operational, not seen or blocked); ``price``: allocation prices
    subtracted from the information; ``previous``: the last shadow test (a starting solution);
    ``ineligible``: bool per item, the examinee's exposure-eligibility draw (priced out, taken
    only when the rules need it, and then reported as the ``exposure`` relaxation).
    """
    free = allowed.copy()
    free[given] = True
    cost = np.zeros(info.size) if price is None else np.asarray(price, np.float64).copy()
    if ineligible is not None:
        cost = cost + ELIGIBILITY_PENALTY * ineligible
    cost_or_none = cost if (price is not None or ineligible is not None) else None
    if spec.candidates_per_group:
        cand = _candidates(spec, info - cost, given, free, spec.candidates_per_group)
        test = _solve(spec, info, given, cand, cost_or_none, previous)
        if not test.relaxed and not _takes_ineligible(test, given, ineligible):
            return _with_exposure(test, given, ineligible)
    test = _solve(spec, info, given, np.flatnonzero(free), cost_or_none, previous)
    test.full = True
    return _with_exposure(test, given, ineligible)


def _takes_ineligible(test: ShadowTest, given: np.ndarray, ineligible: np.ndarray | None) -> bool:
    return ineligible is not None and bool(ineligible[np.setdiff1d(test.items, given)].any())


def _with_exposure(test: ShadowTest, given: np.ndarray, ineligible: np.ndarray | None) -> ShadowTest:
    """``test`` with the ineligible items it had to take (beyond those given) among its relaxed rules."""
    if ineligible is not None:
        taken = int(ineligible[np.setdiff1d(test.items, given)].sum())
        if taken:
            test.relaxed.insert(0, (EXPOSURE_RULE, float(taken)))
    return test


def _candidates(spec: ShadowSpec, gain: FloatArray, given: np.ndarray, free: np.ndarray, k: int) -> np.ndarray:
    """The items given, the ``k`` free items of most ``gain`` (information less price) of every
    count rule's group and overall (``2 * length``), and every item of a passage in play (given
    or among those)."""
    order = np.argsort(-np.where(free, gain, -np.inf))
    order = order[free[order]]
    keep = np.zeros(free.size, bool)
    keep[given] = True
    keep[order[: 2 * spec.length]] = True
    for rule in spec.counts:
        keep[order[rule.members[order]][: max(k, rule.lo)]] = True
    if spec.sets is not None:
        in_play = np.unique(spec.sets.set_of[keep & (spec.sets.set_of >= 0)])
        keep |= np.isin(spec.sets.set_of, in_play) & free
    return np.flatnonzero(keep & free)


def _solve(spec: ShadowSpec, info: FloatArray, given: np.ndarray, cand: np.ndarray,
           price: FloatArray | None, previous: np.ndarray | None) -> ShadowTest:
    import highspy

    m = cand.size
    pos = {int(j): k for k, j in enumerate(cand)}
    gain = info[cand] - (price[cand] if price is not None else 0.0)
    cols_cost: list[float] = list(gain)
    lower = np.zeros(m)
    lower[[pos[int(j)] for j in given]] = 1.0
    cols_lo: list[float] = list(lower)
    cols_hi: list[float] = [1.0] * m
    integral = [True] * m
    rows: list[tuple[float, float, list[int], list[float]]] = []  # (lo, hi, columns, values)
    inf = highspy.kHighsInf
    rows.append((spec.length, spec.length, list(range(m)), [1.0] * m))
    slacks: list[tuple[str, int, float]] = []  # (rule, column, sign)

    def slack(name: str, penalty: float) -> int:
        cols_cost.append(-penalty)
        cols_lo.append(0.0)
        cols_hi.append(inf)
        integral.append(False)
        return len(cols_cost) - 1

    every = np.arange(m)
    for rule in spec.counts:
        cols = np.flatnonzero(rule.members[cand]).tolist()
        vals = [1.0] * len(cols)
        if rule.lo > 0:
            s = slack(rule.name, COUNT_PENALTY)
            slacks.append((rule.name, s, 1.0))
            rows.append((rule.lo, inf, [*cols, s], [*vals, 1.0]))
        if rule.hi is not None:
            t = slack(rule.name, COUNT_PENALTY)
            slacks.append((rule.name, t, -1.0))
            rows.append((-inf, rule.hi, [*cols, t], [*vals, -1.0]))
    for srule in spec.sums:
        w = srule.weights[cand]
        if srule.lo is not None:
            s = slack(srule.name, SUM_PENALTY)
            slacks.append((srule.name, s, 1.0))
            rows.append((srule.lo, inf, [*every.tolist(), s], [*w.tolist(), 1.0]))
        if srule.hi is not None:
            t = slack(srule.name, SUM_PENALTY)
            slacks.append((srule.name, t, -1.0))
            rows.append((-inf, srule.hi, [*every.tolist(), t], [*w.tolist(), -1.0]))
    for enemy in spec.enemies:
        cols = [pos[int(j)] for j in enemy if int(j) in pos]
        if len(cols) > 1:
            rows.append((-inf, 1.0, cols, [1.0] * len(cols)))
    set_cols: list[int] = []
    if spec.sets is not None:
        rule_sets = spec.sets
        of = rule_sets.set_of[cand]
        for p in np.unique(of[of >= 0]):
            members = np.flatnonzero(of == p).tolist()
            z = len(cols_cost)
            cols_cost.append(0.0)
            cols_lo.append(0.0)
            cols_hi.append(1.0)
            integral.append(True)
            set_cols.append(z)
            hi = rule_sets.items_max if rule_sets.items_max is not None else len(members)
            rows.append((0.0, inf, [*members, z], [1.0] * len(members) + [-float(rule_sets.items_min)]))
            rows.append((-inf, 0.0, [*members, z], [1.0] * len(members) + [-float(hi)]))
        if rule_sets.max_sets is not None and set_cols:
            rows.append((-inf, rule_sets.max_sets, set_cols, [1.0] * len(set_cols)))

    lp = highspy.HighsLp()
    ncol = len(cols_cost)
    lp.num_col_, lp.num_row_ = ncol, len(rows)
    lp.col_cost_ = np.asarray(cols_cost, float)
    lp.col_lower_, lp.col_upper_ = np.asarray(cols_lo, float), np.asarray(cols_hi, float)
    lp.row_lower_ = np.array([r[0] for r in rows], float)
    lp.row_upper_ = np.array([r[1] for r in rows], float)
    starts, index, value = [0], [], []
    for _, _, cols, vals in rows:
        index.extend(cols)
        value.extend(vals)
        starts.append(len(index))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.asarray(starts, np.int32)
    lp.a_matrix_.index_ = np.asarray(index, np.int32)
    lp.a_matrix_.value_ = np.asarray(value, float)
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = ncol, len(rows)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in integral]
    h = _highs()
    h.clearSolver()
    h.setOptionValue("time_limit", spec.time_limit)
    h.passModel(lp)
    if previous is not None and previous.size:
        start = np.zeros(ncol)
        for j in previous:
            k = pos.get(int(j))
            if k is not None:
                start[k] = 1.0
        sol = highspy.HighsSolution()
        sol.col_value = list(start)
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    solution = h.getSolution()
    if not solution.value_valid:
        # the time limit came before any solution: never serve from a non-solution; solve on
        # without the limit (the problem is always feasible while the length can be met)
        h.setOptionValue("time_limit", highspy.kHighsInf)
        h.run()
        solution = h.getSolution()
    values = np.asarray(solution.col_value)
    if not solution.value_valid or values.size < ncol:
        raise RuntimeError(f"the shadow test found no solution ({h.modelStatusToString(h.getModelStatus())})")
    chosen = cand[values[:m] > 0.5]
    relaxed = [(name, round(float(values[col]), 3)) for name, col, _ in slacks if values[col] > 1e-6]
    return ShadowTest(items=chosen, relaxed=relaxed, candidates=m)
