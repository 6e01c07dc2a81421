"""Exposure control for a bank: allocation prices and Sympson-Hetter parameters for a test policy.

Under the default policy max-info ranks items by their information less an allocation price
(:mod:`irtcat.irt.exposure`: the dual prices of the linear program that gives each theta its
best test under the cap), and serves the chosen item only after it wins a lottery with
probability ``exposure_k`` (Sympson & Hetter 1985); together they keep every item's exposure
rate at or below the policy's ``max_exposure``. A shadow-test policy runs no lottery and takes
no prices: there ``exposure_k`` is each item's eligibility probability, drawn once per examinee
(van der Linden & Veldkamp 2004; :func:`irtcat.irt.simulation.eligibility_probabilities`). Both
depend on the bank and the policy, so they are computed when a bank is made (``irtcat bank
generate``, the demo) or on demand (``irtcat exposure``), and travel with the bank.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from ..irt.exposure import allocation_prices
from ..irt.simulation import eligibility_probabilities, sympson_hetter_parameters
from .bank import ExposureControl, ItemBank
from .policy import TestPolicy

# The iteration aims this far below the policy's maximum: a simulated rate has a sampling
# error (about 0.008 at 0.25 over 3,000 examinees), the largest of some 100 noisy rates at the
# aim sits a couple of errors above it, and the lottery's fixed point lags its target. At 0.88,
# on the demo bank (500 items, 0.25 cap), the largest rate on 2,000 fresh examinees is at or
# under the maximum in 9 of 12 samples (0.2505, 0.251 and 0.2635 over it): mostly the noise of
# 2,000 examinees' rates themselves, since on 8,000 it stays under (the `exposure` table: 0.245).
TARGET_MARGIN = 0.88
# The shadow test's eligibility pass aims at the same share of the cap as the lottery does: its
# one pass of simulees (integer programs are dear) is made precise enough by stratified thetas
# and unfaded counts after a burn-in (irt.simulation.eligibility_probabilities). On the blueprint
# benchmark's bank (1,000 items, 20 rules, 0.25 cap) the largest rate on 2,000 fresh simulees
# was 0.248 (max-info under its own control: 0.243); a pass of 600 with fading counts had needed
# to aim at 0.72 to stay under the cap (0.288 on 1,000 fresh simulees aiming at 0.88).
SHADOW_EXAMINEES = 2000
SHADOW_BURN_IN = 400
# names what with_exposure_control computes, for caches of its results
METHOD = "allocation-prices+sympson-hetter+shadow-eligibility-stratified-pass"


def with_exposure_control(bank: ItemBank, policy: TestPolicy | None = None, examinees: int = 3000,
                          rounds: int = 12, seed: int = 0, margin: float = TARGET_MARGIN, prices: bool = True,
                          shadow_examinees: int = SHADOW_EXAMINEES) -> tuple[ItemBank, list[float]]:
    """``bank`` with ``exposure_price`` (when ``prices`` and the policy selects by max-info) and
    ``exposure_k`` set so that, under ``policy`` (default: the default
    policy), no item's exposure rate exceeds ``policy.max_exposure`` (both aim at ``margin``
    times it); and the largest exposure rate of each simulated round. ``exposure_k`` is the
    Sympson-Hetter parameter under a per-item lottery (``rounds`` of ``examinees``) and the
    item's eligibility probability under the shadow test (one pass of ``shadow_examinees``,
    the first :data:`SHADOW_BURN_IN` of them a burn-in)."""
    policy = policy or TestPolicy()
    config = policy.cat_config(bank)
    target = policy.max_exposure * margin
    engine = bank.engine
    price = np.zeros(len(engine))
    # the shadow test takes no prices: its eligibility draw alone holds the cap, and prices on
    # top of it cost precision (1,000 fresh simulees on the blueprint benchmark's bank, 0.25 cap,
    # paired: RMSE x1.033 with prices, 95% interval [1.001, 1.065], largest rate 0.235 vs 0.229)
    if prices and policy.selection == "max_info":
        # too few items for the cap: no allocation meets it, and the lottery does what it can
        with contextlib.suppress(ValueError):
            price = allocation_prices(engine, target, config.max_items, config.prior.mean, config.prior.sd).prices
    if policy.selection == "shadow":
        # no lottery on top of a hard rule: item eligibility, which the shadow test's objective
        # prices (it yields before any rule does), from one self-adaptive pass of simulees that
        # starts from the Sympson-Hetter parameters max-info would need (seconds to compute)
        unpriced = engine.with_exposure_k(np.ones(len(engine)), price)
        start, _ = sympson_hetter_parameters(unpriced, dataclasses.replace(config, selection="max_info", shadow=None),
                                             target, examinees, rounds, seed)
        k, history = eligibility_probabilities(unpriced, config, target, shadow_examinees, seed=seed, initial=start,
                                                 burn_in=min(SHADOW_BURN_IN, shadow_examinees // 2))
    else:
        k, history = sympson_hetter_parameters(engine.with_exposure_k(np.ones(len(engine)), price), config,
                                               target, examinees, rounds, seed)
    items = [it.model_copy(update={"exposure_k": float(max(min(kk, 1.0), 1e-6)), "exposure_price": float(pp)})
             for it, kk, pp in zip(bank.items, np.asarray(k), price, strict=True)]
    marker = ExposureControl(policy_digest=policy.exposure_digest(), max_exposure=policy.max_exposure,
                             selection=policy.selection, method=METHOD, policy=policy.exposure_shaping())
    return bank.model_copy(update={"items": items, "exposure_control": marker}), history


def after_promotion(bank: ItemBank) -> tuple[ItemBank, str | None]:
    """A calibrated bank version whose pretest items were promoted, with its exposure control
    recomputed for the policy its predecessor's was computed for (the promoted items join the
    allocation); and what was done, for the run's log (None: the bank carried none to redo)."""
    marker = bank.exposure_control
    if marker is None or marker.policy is None:
        return bank, None
    policy = TestPolicy.model_validate(marker.policy)
    controlled, _ = with_exposure_control(bank, policy)
    return controlled, f"exposure control recomputed for policy {marker.policy_digest} ({policy.selection})"
