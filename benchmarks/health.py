"""Benchmarks of a bank's health statistics: recovery studies with fixed seeds, each against the
bar the bank-health issue sets.

* ``itemfit_power``: 5,000 x 30 right/wrong answers, 3 items generated off-model (upper
  asymptote 0.65, slope 2, b -1, -0.5, 0), all calibrated as 2PL (priors off) and tested by
  S-X2 at alpha .05 without adjustment; power (share of off-model items flagged) and the false
  flag rate of the 27 others, over replications.
* ``dif_power``: 4,000 reference (N(0, 1)) + 4,000 focal (N(-0.5, 1)) examinees, 30 2PL items
  with the bank's parameters; items 0-2 harder for the focal group by 1.2 in log-odds (MH delta
  near -2.8), item 3 with the focal slope x0.3 (non-uniform); MH with ETS classes and the LR test.
* ``linking_coverage``: 20 common items on two scales (A 1.2, B -0.3), both calibrations with
  noise SD 0.05 on b and on log a; every method: mean and largest |A_hat - A|, |B_hat - B|, and
  how often the 95% interval (estimate +- 1.96 bootstrap SE) covers the truth.
* ``drift_power``: 40 operational items, 2,000 complete responses from N(0.2, 1.1), items 0-2 now
  0.5 harder than the bank says; re-estimated (2PL, default priors), linked, robust z: the
  share of replications that found all three, and false flags per replication.
* ``rapid_guessing``: 1,000 students x 30 items, 10% of them guessing rapidly (0.5-2.5 s, a
  quarter right) on 30% of the items, the others taking about their item's typical time: the
  share of sessions flagged by response-time effort (NT10, effort < 0.90) among guessers and
  others, and the guessers' RMSE of EAP with all answers and effort-moderated.
* ``personfit_power``: 1,000 simulees x 40 2PL items, MAP estimates: lz* flags at alpha .05 among
  fitting simulees, and among simulees who knew the answers to the hardest 20% beforehand.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np


def bench_itemfit_power(replications: int = 10) -> dict[str, Any]:
    """S-X2 power on off-model items and false flags on the others (module docstring)."""
    from irtcat.irt.calibration import ResponseData
    from irtcat.irt.calibration.engine import calibrate
    from irtcat.irt.calibration.priors import Priors
    from irtcat.irt.health.common import ItemCurves, normal_grid, right_wrong_curves
    from irtcat.irt.health.itemfit import item_fit
    from irtcat.irt.model import ItemParameters

    k, n = 30, 5000
    hits, false = [], []
    for rep in range(replications):
        rng = np.random.default_rng(1000 + rep)
        a, b = rng.uniform(0.8, 2.0, k), rng.normal(0, 1, k)
        upper = np.ones(k)
        upper[:3], a[:3], b[:3] = 0.65, 2.0, [-1.0, -0.5, 0.0]
        theta = rng.normal(size=n)
        x = (rng.random((n, k)) < upper / (1 + np.exp(-a * (theta[:, None] - b)))).astype(np.int64)
        rows, cols = np.nonzero(np.ones_like(x))
        fit = calibrate(ResponseData.from_long(rows, cols, x[rows, cols], n_persons=n, n_items=k), "2PL",
                        priors=Priors(), n_nodes=61)
        grid, w = normal_grid()
        params = ItemParameters(fit.a, fit.b, np.zeros(k), np.ones(k), 1.0)
        items, _ = item_fit(x, ItemCurves(tuple(right_wrong_curves(params, grid)), np.full(k, 2)), w, adjust="none")
        flagged = np.array([f.flagged for f in items])
        hits.append(flagged[:3].mean())
        false.append(flagged[3:].mean())
    return {"itemfit_replications": replications, "itemfit_power": float(np.mean(hits)),
            "itemfit_false_flag_rate": float(np.mean(false))}


def bench_dif_power(replications: int = 5) -> dict[str, Any]:
    """MH and LR DIF: power, ETS class, mean delta, non-uniform DIF found, false flags."""
    from irtcat.irt.datagen import planted_dif
    from irtcat.irt.health.dif import dif

    k, n = 30, 4000
    uniform, c_class, nonuniform, false, deltas = [], [], [], [], []
    for rep in range(replications):
        x, focal, a, b, _ = planted_dif(n, k, 2000 + rep)
        results = dif(x, focal, a, b, np.zeros(k))
        uniform += [r.flagged for r in results[:3]]
        c_class += [r.mh.ets_class == "C" for r in results[:3]]
        deltas += [r.mh.delta for r in results[:3]]
        nonuniform.append(results[3].lr_nonuniform_p < 0.05)
        false += [r.flagged for r in results[4:]]
    return {"dif_replications": replications, "dif_uniform_power": float(np.mean(uniform)),
            "dif_uniform_class_c_share": float(np.mean(c_class)), "dif_uniform_mean_delta": float(np.mean(deltas)),
            "dif_nonuniform_found_share": float(np.mean(nonuniform)), "dif_false_flag_rate": float(np.mean(false))}


def bench_linking_coverage(replications: int = 100) -> dict[str, Any]:
    """Each linking method's errors in A and B and the coverage of its bootstrap intervals."""
    from irtcat.irt.health.linking import METHODS, LinkItem, link

    big_a, big_b, k = 1.2, -0.3, 20
    out: dict[str, Any] = {"linking_replications": replications}
    errors: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS}
    covered: dict[str, list[tuple[bool, bool]]] = {m: [] for m in METHODS}
    for rep in range(replications):
        rng = np.random.default_rng(3000 + rep)
        a, b = rng.uniform(0.8, 2.0, k), rng.normal(0, 1, k)

        def noisy(slope: np.ndarray, loc: np.ndarray, rng: np.random.Generator = rng) -> list[LinkItem]:
            return [LinkItem(float(s * np.exp(rng.normal(0, 0.05))), (float(x + rng.normal(0, 0.05)),))
                    for s, x in zip(slope, loc, strict=True)]

        old, new = noisy(a, b), noisy(a * big_a, (b - big_b) / big_a)
        for m in METHODS:
            r = link(old, new, m, replications=100, seed=rep)
            errors[m].append((r.A - big_a, r.B - big_b))
            covered[m].append((abs(r.A - big_a) <= 1.96 * r.se_A, abs(r.B - big_b) <= 1.96 * r.se_B))
    for m in METHODS:
        e, c = np.abs(np.array(errors[m])), np.array(covered[m])
        key = m.replace("-", "_")
        out.update({f"linking_{key}_mean_abs_error_A": float(e[:, 0].mean()),
                    f"linking_{key}_mean_abs_error_B": float(e[:, 1].mean()),
                    f"linking_{key}_max_abs_error_A": float(e[:, 0].max()),
                    f"linking_{key}_max_abs_error_B": float(e[:, 1].max()),
                    f"linking_{key}_coverage_A": float(c[:, 0].mean()),
                    f"linking_{key}_coverage_B": float(c[:, 1].mean())})
    return out


def bench_personfit_power(replications: int = 10) -> dict[str, Any]:
    """lz* flags among fitting simulees and among simulees with preknowledge."""
    from irtcat.irt.health.personfit import lz_star, misfitting
    from irtcat.irt.model import ItemParameters

    k, n = 40, 1000
    grid = np.linspace(-4, 4, 401)
    false, found = [], []
    for rep in range(replications):
        rng = np.random.default_rng(4000 + rep)
        a, b = rng.uniform(0.8, 2.0, k), rng.normal(0, 1, k)
        params = ItemParameters(a, b, np.zeros(k), np.ones(k), 1.0)
        theta = rng.normal(size=n)
        x = (rng.random((n, k)) < 1 / (1 + np.exp(-a * (theta[:, None] - b)))).astype(int)
        cheat = x.copy()
        cheat[:, np.argsort(-b)[: k // 5]] = 1
        pg = 1 / (1 + np.exp(-a * (grid[:, None] - b)))
        for data, into in ((x, false), (cheat, found)):
            ll = data @ np.log(pg).T + (1 - data) @ np.log(1 - pg).T - grid**2 / 2
            est = grid[np.argmax(ll, axis=1)]
            flags = [misfitting(lz_star(r, params, float(t), (0.0, 1.0))) for r, t in zip(data, est, strict=True)]
            into.append(float(np.mean(flags)))
    return {"personfit_replications": replications, "personfit_false_flag_rate": float(np.mean(false)),
            "personfit_preknowledge_power": float(np.mean(found))}


def bench_drift_power(replications: int = 20) -> dict[str, Any]:
    """Planted drift found, and false flags per replication."""
    from irtcat.irt.calibration import ResponseData
    from irtcat.irt.calibration.engine import calibrate
    from irtcat.irt.health.drift import drift
    from irtcat.irt.health.linking import LinkItem

    k, n = 40, 2000
    found, false = [], []
    for rep in range(replications):
        rng = np.random.default_rng(5000 + rep)
        a, b = rng.uniform(0.8, 2.0, k), rng.normal(0, 1, k)
        now = b.copy()
        now[:3] += 0.5
        theta = rng.normal(0.2, 1.1, n)
        x = (rng.random((n, k)) < 1 / (1 + np.exp(-a * (theta[:, None] - now)))).astype(np.int64)
        rows, cols = np.nonzero(np.ones_like(x))
        fit = calibrate(ResponseData.from_long(rows, cols, x[rows, cols], n_persons=n, n_items=k), "2PL")
        result = drift([LinkItem(float(s), (float(d),)) for s, d in zip(a, b, strict=True)],
                       [LinkItem(float(s), (float(d),)) for s, d in zip(fit.a, fit.b, strict=True)])
        found.append(result.flagged[:3].all())
        false.append(int(result.flagged[3:].sum()))
    return {"drift_replications": replications, "drift_all_three_found_share": float(np.mean(found)),
            "drift_false_flags_per_replication": float(np.mean(false))}


def bench_rapid_guessing(replications: int = 10) -> dict[str, Any]:
    """Sessions flagged by response-time effort, and the guessers' RMSE with effort-moderated scoring."""
    from irtcat.irt.health.personfit import effort, rapid_thresholds

    k, n = 30, 1000
    grid = np.linspace(-4, 4, 161)
    flagged_guessers, flagged_others, rmse_all, rmse_moderated = [], [], [], []
    for rep in range(replications):
        rng = np.random.default_rng(6000 + rep)
        a, b = rng.uniform(0.8, 2.0, k), rng.normal(0, 1, k)
        typical = np.log(rng.uniform(20, 60, k))  # each item's mean log seconds
        theta = rng.normal(size=n)
        guesser = rng.random(n) < 0.1
        rapid = guesser[:, None] & (rng.random((n, k)) < 0.3)
        p = 1 / (1 + np.exp(-a * (theta[:, None] - b)))
        x = np.where(rapid, rng.random((n, k)) < 0.25, rng.random((n, k)) < p).astype(int)
        seconds = np.where(rapid, rng.uniform(0.5, 2.5, (n, k)), np.exp(typical + rng.normal(0, 0.4, (n, k))))
        thresholds = rapid_thresholds(typical)
        flags = np.array([effort(seconds[i], thresholds)[2] for i in range(n)])
        flagged_guessers.append(flags[guesser].mean())
        flagged_others.append(flags[~guesser].mean())
        pg = 1 / (1 + np.exp(-a * (grid[:, None] - b)))
        for keep, into in ((np.ones((n, k), bool), rmse_all), (seconds >= thresholds, rmse_moderated)):
            ll = (x * keep) @ np.log(pg).T + ((1 - x) * keep) @ np.log(1 - pg).T - grid**2 / 2
            post = np.exp(ll - ll.max(axis=1, keepdims=True))
            eap = (post @ grid) / post.sum(axis=1)
            into.append(float(np.sqrt(np.mean((eap[guesser] - theta[guesser]) ** 2))))
    return {"rapid_replications": replications, "rapid_guessers_flagged": float(np.mean(flagged_guessers)),
            "rapid_others_flagged": float(np.mean(flagged_others)),
            "rapid_guessers_rmse_all_answers": float(np.mean(rmse_all)),
            "rapid_guessers_rmse_effort_moderated": float(np.mean(rmse_moderated))}


BENCHES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "itemfit_power": lambda a: bench_itemfit_power(),
    "dif_power": lambda a: bench_dif_power(),
    "linking_coverage": lambda a: bench_linking_coverage(),
    "personfit_power": lambda a: bench_personfit_power(),
    "drift_power": lambda a: bench_drift_power(),
    "rapid_guessing": lambda a: bench_rapid_guessing(),
}
