"""Allocation prices: which examinees an exposure cap should withhold each item from.

An exposure cap r says that no item may reach more than a share r of the examinees. Which
examinees go without a popular item decides what the cap costs in precision. The linear
program (after van der Linden 2005, *Linear Models for Optimal Test Design*, ch. 9: adaptive
test assembly under item-exposure constraints) with theta known on a grid g (weights w_g from
the prior) and x_gi the share of examinees at g given item i::

    maximise   sum_g w_g sum_i x_gi I_i(theta_g)
    subject to sum_i x_gi = L                  (L items each: the test's maximum length)
               sum_g w_g x_gi <= r             (the exposure cap, dual price lambda_i >= 0)
               0 <= x_gi <= 1

has the Lagrangian sum_g w_g sum_i x_gi (I_i(theta_g) - lambda_i) + ..., so at every theta the
optimal test is made of the L largest I_i(theta) - lambda_i: the dual prices lambda_i are what
each item's information is worth less under the cap. Selecting by the priced information at
the current estimate hands a contested item to the examinees who lose most without it (those
whose next-best item is much worse) and steers the others to near-equivalents; the
Sympson-Hetter lottery then holds the rates that estimation error and the shared first items
still push over the cap.

A shadow test serves from an assembled test, not by a lottery per item: there ``exposure_k`` is
an item's eligibility probability (van der Linden & Veldkamp 2004), drawn once per examinee at
the start (:func:`draw_ineligible`); an ineligible item is priced out of the shadow test, which
takes it back only when the blueprint cannot be met without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import CatConfig
from .model import FloatArray
from .shadow import ShadowSpec
from .state import Bank


@dataclass(frozen=True)
class Allocation:
    """The LP's outcome: a price per bank item (0 for items the cap does not bind and for
    non-operational ones), and ``bound``: sqrt(E[1 / I_cap] / E[1 / I_free]), the RMSE ratio an
    estimator at the information bound would see against the L most informative items at each
    theta, the least any exposure control can cost at this cap with theta known."""

    prices: FloatArray
    bound: float


def allocation_prices(bank: Bank, cap: float, length: int, prior_mean: float = 0.0, prior_sd: float = 1.0,
                      nodes: int = 57, rules: ShadowSpec | None = None) -> Allocation:
    """Solve the allocation LP above for the bank's operational items on ``nodes`` points of
    prior_mean +- 3.5 prior_sd (HiGHS dual simplex). With ``rules`` (a blueprint's), every
    theta's test also meets its count and sum rules (lo_r <= sum_{i in r} x_gi <= hi_r), so the
    bound is what the cap costs a test held to the blueprint (enemies and passages, which need
    integers, are left out: the bound stays a bound). ValueError when the cap cannot be met:
    fewer than length / cap operational items, or rules no allocation meets."""
    from scipy.optimize import linprog
    from scipy.sparse import eye, kron, vstack

    if not 0 < cap <= 1:
        raise ValueError("the exposure cap must be in (0, 1]")
    ops = np.flatnonzero(bank.operational)
    length = min(length, ops.size)
    if ops.size * cap < length:
        raise ValueError(f"{ops.size} operational items cannot give {length} items each at exposure {cap}")
    theta = prior_mean + prior_sd * np.linspace(-3.5, 3.5, nodes)
    weight = np.exp(-np.linspace(-3.5, 3.5, nodes) ** 2 / 2)
    weight /= weight.sum()
    info = bank.information(theta)[:, ops].astype(np.float64)  # (nodes, items)
    items = ops.size
    rows, limits = [kron(weight[None, :], eye(items))], [np.full(items, cap)]
    for members, lo, hi in _rule_rows(rules, ops):
        if hi is not None:
            rows.append(kron(eye(nodes), members[None, :]))
            limits.append(np.full(nodes, hi))
        if lo is not None:
            rows.append(kron(eye(nodes), -members[None, :]))
            limits.append(np.full(nodes, -lo))
    res = linprog(-(weight[:, None] * info).ravel(), A_ub=vstack(rows).tocsr(), b_ub=np.concatenate(limits),
                  A_eq=kron(eye(nodes), np.ones((1, items))),
                  b_eq=np.full(nodes, float(length)), bounds=(0, 1), method="highs")
    if res.status != 0:
        raise ValueError(f"the allocation program failed: {res.message}")
    prices = np.zeros(len(bank))
    prices[ops] = np.maximum(-res.ineqlin.marginals[:items], 0.0)
    free = np.sort(info, axis=1)[:, ::-1][:, :length].sum(axis=1)
    capped = (res.x.reshape(nodes, items) * info).sum(axis=1)
    bound = float(np.sqrt(np.sum(weight / capped) / np.sum(weight / free)))
    return Allocation(prices, bound)


def _rule_rows(rules: ShadowSpec | None, ops: np.ndarray) -> list[tuple[FloatArray, float | None, float | None]]:
    """Per count or sum rule of a blueprint: its weight per operational item and its bounds."""
    if rules is None:
        return []
    counts = [(r.members[ops].astype(np.float64), float(r.lo) if r.lo else None,
               None if r.hi is None else float(r.hi)) for r in rules.counts]
    sums = [(np.asarray(r.weights[ops], np.float64), r.lo, r.hi) for r in rules.sums]
    return counts + sums


def draw_ineligible(exposure_k: FloatArray, rng: np.random.Generator) -> np.ndarray:
    """One examinee's eligibility draw: item i is ineligible for the whole test with
    probability 1 - exposure_k[i] (van der Linden & Veldkamp 2004, item eligibility)."""
    out: np.ndarray = rng.random(exposure_k.size) >= exposure_k
    return out


def exposure_eligibility(bank: Bank, config: CatConfig) -> bool:
    """Whether a test draws item eligibility: a shadow test under exposure control on a bank
    whose items carry eligibility probabilities below 1."""
    return config.selection == "shadow" and config.sympson_hetter and bool((bank.exposure_k < 1).any())
