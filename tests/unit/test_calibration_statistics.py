"""Item statistics a psychometrician can check: observed-information standard errors against a
numerically differentiated observed-data log-likelihood, interval coverage, and an EM whose
objective (log-likelihood + log prior) never falls."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from irtcat.irt.calibration import (
    SE_METHOD,
    CalibModel,
    CalibrationWarning,
    ItemEstimates,
    Priors,
    ResponseData,
    calibrate,
    e_step,
    quadrature,
)
from irtcat.irt.calibration.right_wrong import log_prior
from irtcat.irt.config import CatConfig
from irtcat.irt.datagen import generate_parameters, generate_responses
from irtcat.irt.simulation import simulate
from irtcat.irt.state import PRETEST, Bank

K = {"1PL": 1, "2PL": 2, "3PL": 3}


def complete(model: str, persons: int, items: int, seed: int, per_person: int | None = None):  # type: ignore[no-untyped-def]
    params = generate_parameters(items, model, seed=seed)  # type: ignore[arg-type]
    thetas = np.random.default_rng(seed + 1).normal(size=persons)
    return params, ResponseData.from_long(*generate_responses(params, thetas, seed=seed + 2,
                                                              items_per_person=per_person), n_items=items)


def quiet_calibrate(*args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        return calibrate(*args, **kwargs)


def numerical_information(data: ResponseData, est: ItemEstimates, model: CalibModel, priors: Priors,
                          free: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Minus the central-difference Hessian of log-likelihood + log prior in the free items'
    (b, a, c)[:k], item-major: the reference the analytic observed information must match."""
    k, idx = K[model], np.flatnonzero(free)
    nodes, weights = quadrature(41)

    def objective(vec: np.ndarray) -> float:
        cur = est.copy()
        for j, i in enumerate(idx):
            cur.b[i] = vec[j * k]
            if k >= 2:
                cur.a[i] = vec[j * k + 1]
            if k == 3:
                cur.c[i] = vec[j * k + 2]
        return e_step(data, cur, nodes, np.log(weights)).log_likelihood + log_prior(cur, priors, model, free, free)

    v0 = np.concatenate([[est.b[i], est.a[i], est.c[i]][:k] for i in idx])
    size = v0.size
    out = np.zeros((size, size))
    for u in range(size):
        for w in range(u, size):
            du, dw = np.eye(size)[u] * h, np.eye(size)[w] * h
            value = (objective(v0 + du + dw) - objective(v0 + du - dw) - objective(v0 - du + dw)
                     + objective(v0 - du - dw)) / (4 * h * h)
            out[u, w] = out[w, u] = -value
    return out


@pytest.mark.parametrize(("model", "priors"), [
    ("1PL", Priors()),
    ("2PL", Priors()),
    ("3PL", Priors()),
    ("2PL", Priors(log_a=(0.1, 0.5), b=(0.0, 3.0))),
    ("3PL", Priors(log_a=(0.0, 0.5), b=(0.0, 3.0), c=(5.0, 17.0))),
])
def test_standard_errors_are_the_inverse_observed_information(model: CalibModel, priors: Priors) -> None:
    """5 items, 1,000 persons (where the complete-data SEs were 0.34-0.80 of the right ones):
    every SE within 2% of the one from the numerically differentiated observed-data Hessian."""
    _, data = complete(model, 1000, 5, seed=3)
    r = quiet_calibrate(data, model, priors=priors, max_iter=2000)
    assert r.converged and r.se_method == SE_METHOD
    cov = np.linalg.inv(numerical_information(data, ItemEstimates(r.a, r.b, r.c), model, priors, r.estimated))
    reference = np.sqrt(np.diag(cov)).reshape(-1, K[model])
    ours = [r.se_b, r.se_a, r.se_c][: K[model]]
    for j, se in enumerate(ours):
        assert np.allclose(se, reference[:, j], rtol=0.02), (j, se, reference[:, j])
    # the off-diagonal terms on the correlation scale: an element-wise relative tolerance fails
    # on small covariances, whose central-difference reference carries ~5e-5 of rounding that
    # moves with the machine's BLAS kernels
    assert r.covariance is not None
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.allclose(np.diag(r.covariance), np.diag(cov), rtol=0.04)
    assert np.max(np.abs(r.covariance / scale - cov / scale)) < 0.01


def test_online_calibration_standard_errors_hold_the_anchors_fixed() -> None:
    """Pretest items calibrated against fixed operational items: the SEs are those of the
    pretest parameters with the anchors known (their rows and columns are not in the Hessian)."""
    params, data = complete("2PL", 1500, 8, seed=5)
    fixed = {i: (float(params.a[i]), float(params.b[i]), 0.0) for i in range(5)}
    r = quiet_calibrate(data, "2PL", priors=Priors(), fixed=fixed)
    assert not r.estimated[:5].any() and r.estimated[5:].all() and np.isnan(r.se_b[:5]).all()
    cov = np.linalg.inv(numerical_information(data, ItemEstimates(r.a, r.b, r.c), "2PL", Priors(), r.estimated))
    assert np.allclose(r.se_b[5:], np.sqrt(np.diag(cov))[0::2], rtol=0.02)
    assert np.allclose(r.se_a[5:], np.sqrt(np.diag(cov))[1::2], rtol=0.02)


def test_95_percent_intervals_for_b_cover_the_truth() -> None:
    """Coverage (small version of the benchmark's study): 60 replications of 500 persons x 10
    items, 2PL without priors: 600 intervals b +- 1.96 SE(b) cover the true b 95% +- 3%."""
    params = generate_parameters(10, "2PL", seed=1000)
    hits = []
    for rep in range(60):
        thetas = np.random.default_rng(1001 + rep).normal(size=500)
        data = ResponseData.from_long(*generate_responses(params, thetas, seed=6000 + rep))
        r = quiet_calibrate(data, "2PL", priors=Priors())
        hits.append(np.abs(r.b - params.b) <= 1.959964 * r.se_b)
    assert 0.92 <= float(np.mean(hits)) <= 0.98, np.mean(hits)


def _cat(model: str, seed: int) -> ResponseData:
    params = generate_parameters(60, model, seed=seed)  # type: ignore[arg-type]
    thetas = np.random.default_rng(seed + 1).normal(size=1500)
    res = simulate(Bank(params), CatConfig(max_items=15, se_threshold=None), thetas, seed=seed + 2,
                   keep_responses=True)
    assert res.responses is not None
    return ResponseData.from_long(*res.responses, n_items=60)


def _online(model: str, seed: int) -> tuple[ResponseData, dict[int, tuple[float, float, float]]]:
    ops = generate_parameters(40, model, seed=seed)  # type: ignore[arg-type]
    pre = generate_parameters(6, model, seed=seed + 1)  # type: ignore[arg-type]
    params = type(ops).from_arrays(a=np.r_[ops.a, pre.a], b=np.r_[ops.b, pre.b], c=np.r_[ops.c, pre.c])
    status = np.r_[np.zeros(40, dtype=np.int8), np.full(6, PRETEST, dtype=np.int8)]
    thetas = np.random.default_rng(seed + 2).normal(size=1500)
    res = simulate(Bank(params, status=status), CatConfig(max_items=15, se_threshold=None, pretest_positions=(3, 8)),
                   thetas, seed=seed + 3, keep_responses=True)
    assert res.responses is not None
    fixed = {i: (float(ops.a[i]), float(ops.b[i]), float(ops.c[i])) for i in range(40)}
    return ResponseData.from_long(*res.responses, n_items=46), fixed


@pytest.mark.parametrize("model", ["1PL", "2PL", "3PL"])
@pytest.mark.parametrize("design", ["complete", "sparse", "cat", "online"])
@pytest.mark.parametrize("priors", ["default", "none"])
@pytest.mark.parametrize("accelerate", [False, True])
def test_every_em_cycle_climbs(model: CalibModel, design: str, priors: str, accelerate: bool) -> None:
    """log-likelihood + log prior never falls from one accepted point to the next (relative
    tolerance 1e-10), with priors on and off, plain EM and SQUAREM, on complete, sparse (8 of 30
    items), CAT and online-calibration data; 3PL without priors puts several c at a bound."""
    fixed = None
    if design == "complete":
        _, data = complete(model, 600, 12, seed=11)
    elif design == "sparse":
        _, data = complete(model, 1200, 30, seed=12, per_person=8)
    elif design == "cat":
        data = _cat(model, seed=13)
    else:
        data, fixed = _online(model, seed=14)
    r = quiet_calibrate(data, model, priors=None if priors == "default" else Priors(), fixed=fixed,
                        accelerate=accelerate, max_iter=300, min_responses=20)
    steps = np.diff(r.objective_trace)
    assert len(r.objective_trace) >= 2
    assert np.all(steps >= -1e-10 * abs(r.objective_trace[-1])), (steps.min(), int(np.argmin(steps)))


@pytest.mark.parametrize("seed", [0, 2, 3, 6, 7])
def test_a_3pl_without_priors_converges_and_fits_at_least_as_well_as_the_2pl(seed: int) -> None:
    """1,000 x 5: the 3PL nests the 2PL (c = 0), so its maximised log-likelihood cannot be lower
    (these seeds ran to the bounds and ended below the 2PL before the M-step held a bounded c)."""
    params = generate_parameters(5, "3PL", seed=seed)
    data = ResponseData.from_long(*generate_responses(params, np.random.default_rng(seed + 1).normal(size=1000),
                                                      seed=seed + 2))
    two = quiet_calibrate(data, "2PL", priors=Priors())
    three = quiet_calibrate(data, "3PL", priors=Priors())
    assert two.converged and three.converged
    assert three.log_likelihood >= two.log_likelihood - 1e-6


def test_priors_from_settings_and_their_errors() -> None:
    doc = {"log_a": [0.0, 0.5], "b": [0.0, 2.0], "c": None, "float_log_a": True}
    priors = Priors.from_dict(doc)
    assert priors == Priors(log_a=(0.0, 0.5), b=(0.0, 2.0), float_log_a=True)
    assert Priors.from_dict(priors.describe()) == priors
    assert Priors.from_dict({}) == Priors()
    for bad, words in (({"slope": [0, 1]}, "unknown prior setting"), ({"b": [0, -1]}, "sigma must be > 0"),
                       ({"c": [0, 17]}, "both must be > 0"), ({"b": "wide"}, "pair of numbers"),
                       ({"log_a": [0, True]}, "pair of numbers"), ({"float_log_a": "yes"}, "true or false")):
        with pytest.raises(ValueError, match=words):
            Priors.from_dict(bad)


def test_the_summary_states_the_priors_and_the_standard_error_method() -> None:
    _, data = complete("2PL", 500, 6, seed=21)
    summary = quiet_calibrate(data, "2PL", priors=Priors()).summary()
    assert summary["priors"] == Priors().describe() and summary["se_method"] == SE_METHOD
    floated = quiet_calibrate(data, "2PL")
    stated = floated.summary()["priors"]
    # the default's slope prior floats: the summary states the mean it ended at
    assert stated["float_log_a"] and stated["b"] == [0.0, 3.0]
    assert stated["log_a"] == pytest.approx([float(np.mean(np.log(floated.a))), 0.5])
