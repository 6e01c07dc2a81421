"""Item selection rules: which eligible item an adaptive test serves next.

A rule scores every item for each row of examinees (higher is better; the criteria's maths is in
:mod:`.criteria`) and may narrow the eligible set (a-stratification serves from one stratum).
Rules register by name with :func:`selection_rule`; a test's policy names one. A new rule is one
decorated function; no other rule changes.

* ``max_info``: maximum Fisher information at theta_hat (Lord 1980); under exposure control,
  less each item's allocation price (:mod:`.exposure`).
* ``kl``: global Kullback-Leibler information (Chang & Ying 1996).
* ``a_stratified``: a-stratification with b-blocking (Chang, Qian & Ying 2001).
* ``random``: uniform among eligible items (a baseline for exposure studies).
* ``shadow``: the shadow test of the policy's blueprint (van der Linden & Reese 1998;
  :mod:`.shadow`): its most informative unused item, a started passage first.

:func:`select_next` wraps the rule with what every test gets: pretest positions, content
balancing (Kingsbury & Zara 1989), randomesque-k and the Sympson-Hetter lottery (Sympson &
Hetter 1985).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .config import CatConfig
from .criteria import (
    kl_information,
    kl_information_partial_credit,
    pick,
    pick_from_top,
    stratified_closeness,
    top_information,
)
from .model import FloatArray
from .shadow import ELIGIBILITY_PENALTY, assemble
from .state import Bank, CatState, eligible_operational

# (state, bank, config, rows, eligible, rng) -> (criterion per row and item, eligible)
Rule = Callable[[CatState, Bank, CatConfig, np.ndarray, np.ndarray, np.random.Generator],
                tuple[FloatArray, np.ndarray]]

SELECTION_RULES: dict[str, Rule] = {}


def selection_rule(name: str) -> Callable[[Rule], Rule]:
    """Register a selection rule under ``name``."""

    def register(rule: Rule) -> Rule:
        if name in SELECTION_RULES:
            raise ValueError(f"selection rule {name!r} is registered twice")
        SELECTION_RULES[name] = rule
        return rule

    return register


def rule_named(name: str) -> Rule:
    """The registered rule ``name``, or a ValueError that lists the known ones."""
    try:
        return SELECTION_RULES[name]
    except KeyError:
        known = ", ".join(sorted(SELECTION_RULES))
        raise ValueError(f"unknown selection rule {name!r} (known: {known})") from None


@selection_rule("max_info")
def _max_info(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray, eligible: np.ndarray,
              rng: np.random.Generator) -> tuple[FloatArray, np.ndarray]:
    info = bank.information(state.theta[rows])
    if config.sympson_hetter and bank.priced:
        info -= bank.exposure_price[None, :]
    return info, eligible


@selection_rule("kl")
def _kl(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray, eligible: np.ndarray,
        rng: np.random.Generator) -> tuple[FloatArray, np.ndarray]:
    theta, answered = state.theta[rows], state.n_scored[rows]
    crit = kl_information(theta, answered, bank.params32)
    if bank.poly is not None:
        crit[:, bank.poly_index] = kl_information_partial_credit(theta, answered, bank.poly)
    return crit, eligible


@selection_rule("a_stratified")
def _a_stratified(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray, eligible: np.ndarray,
                  rng: np.random.Generator) -> tuple[FloatArray, np.ndarray]:
    strata = bank.strata(config.strata)
    stage = np.minimum(state.n_scored[rows] * config.strata // config.max_items, config.strata - 1)
    in_stage = (strata[None, :] == stage[:, None]) & eligible
    # when the stage's stratum has run dry, fall back to any eligible item
    in_stage |= ~in_stage.any(axis=1, keepdims=True) & eligible
    return stratified_closeness(state.theta[rows], bank.params.b), in_stage


@selection_rule("shadow")
def _shadow(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray, eligible: np.ndarray,
            rng: np.random.Generator) -> tuple[FloatArray, np.ndarray]:
    """Per row, assemble the shadow test at theta (the scored items given, exposure through the
    allocation prices and the examinee's item eligibility) and offer its unused items by
    information; while a set (passage) of the shadow test is started and not yet complete, only
    its items."""
    spec = config.shadow
    if spec is None:
        raise ValueError("the shadow selection rule needs a blueprint in the test's policy")
    info = bank.information(state.theta[rows]).astype(np.float64)
    crit: FloatArray = np.full(info.shape, -np.inf)
    offer = np.zeros_like(eligible)
    price = bank.exposure_price.astype(np.float64) if config.sympson_hetter and bank.priced else None
    for k, r in enumerate(rows.tolist()):
        given = np.flatnonzero(state.administered[r] & bank.operational)  # pretest slots do not count
        ineligible = state.ineligible.get(r)
        test = assemble(spec, info[k], given, eligible[k], price=price, previous=state.shadow.get(r),
                        ineligible=ineligible)
        state.shadow[r] = test.items
        worst = state.relaxed.setdefault(r, {})
        for name, by in test.relaxed:
            worst[name] = max(worst.get(name, 0.0), by)
        unused = np.setdiff1d(test.items, given)
        if spec.sets is not None and unused.size:
            unused = _open_set_first(spec.sets.set_of, state, r, given, test.items, unused)
        # the ineligible items a test had to take come last (by then the rules may no longer need them)
        last = ELIGIBILITY_PENALTY * ineligible[unused] if ineligible is not None else 0.0
        crit[k, unused] = info[k, unused] - last
        offer[k, unused] = True
    return crit, offer


def _open_set_first(set_of: np.ndarray, state: CatState, row: int, given: np.ndarray, test: np.ndarray,
                    unused: np.ndarray) -> np.ndarray:
    """The unused items of the set the last scored item opened, while the shadow test holds more
    of it than were served (a passage's items come together); otherwise ``unused``."""
    n = int(state.n_scored[row])
    if n == 0:
        return unused
    last = int(state.scored_items[row, n - 1])
    current = int(set_of[last])
    if current < 0:
        return unused
    rest = unused[set_of[unused] == current]
    return rest if rest.size else unused


@selection_rule("random")
def _random(state: CatState, bank: Bank, config: CatConfig, rows: np.ndarray, eligible: np.ndarray,
            rng: np.random.Generator) -> tuple[FloatArray, np.ndarray]:
    return rng.random((rows.size, len(bank))), eligible


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
    crit, eligible = rule_named(config.selection)(state, bank, config, rows, eligible, rng)
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
              and not config.content_targets and not (config.sympson_hetter and bank.priced))
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
        # the shadow test prices exposure in its objective: no lottery on top of a hard rule
        if not config.sympson_hetter or config.selection == "shadow":
            choice[todo] = cand
            break
        accept = ~found | (rng.random(todo.size) <= bank.exposure_k[np.maximum(cand, 0)])
        choice[todo[accept]] = cand[accept]
        lost = ~accept
        state.blocked[sub[lost], cand[lost]] = True
        todo = todo[lost]
    return choice
