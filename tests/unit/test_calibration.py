"""Calibration: recovery on complete, adaptive (CAT) and online-calibration data; starting
values on adaptive data; monotone EM; errors, fit and promotion."""

from __future__ import annotations

import numpy as np
import pytest
from irtcat.domain.promotion import promote
from irtcat.irt.calibration import (
    CalibrationWarning,
    ItemEstimates,
    Priors,
    ResponseData,
    calibrate,
    starting_values,
)
from irtcat.irt.config import CatConfig
from irtcat.irt.datagen import generate_parameters, generate_responses
from irtcat.irt.model import ItemParameters
from irtcat.irt.simulation import simulate
from irtcat.irt.state import PRETEST, Bank


def rmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((x - y) ** 2)))


def complete(model: str, persons: int, items: int, seed: int):  # type: ignore[no-untyped-def]
    params = generate_parameters(items, model, seed=seed)  # type: ignore[arg-type]
    thetas = np.random.default_rng(seed + 1).normal(size=persons)
    return params, ResponseData.from_long(*generate_responses(params, thetas, seed=seed + 2))


def test_recovery_complete_2pl():
    params, data = complete("2PL", 3000, 40, seed=1)
    r = calibrate(data, "2PL")
    assert r.converged
    assert rmse(r.a, params.a) <= 0.08 and rmse(r.b, params.b) <= 0.07
    # standard errors are of the size of the actual errors
    assert 0.6 <= np.mean(r.se_b) / rmse(r.b, params.b) <= 1.6


def test_recovery_complete_3pl():
    params, data = complete("3PL", 6000, 30, seed=2)
    r = calibrate(data, "3PL")
    assert r.converged
    assert rmse(r.b, params.b) <= 0.2 and rmse(r.c, params.c) <= 0.06 and rmse(r.a, params.a) <= 0.15


def test_recovery_1pl():
    params, data = complete("1PL", 2000, 25, seed=3)
    r = calibrate(data, "1PL")
    assert np.all(r.a == 1.0) and rmse(r.b, params.b) <= 0.08


def test_log_likelihood_never_decreases_in_plain_em():
    _, data = complete("2PL", 1500, 20, seed=4)
    r = calibrate(data, "2PL", priors=Priors(), accelerate=False, start="flat", max_iter=200)
    steps = np.diff(r.objective_trace)
    assert np.all(steps >= -1e-6 * abs(r.log_likelihood)), steps.min()


@pytest.fixture(scope="module")
def cat_data():  # type: ignore[no-untyped-def]
    """Adaptive data from this project's simulator: 8,000 examinees, 30 items each."""
    params = generate_parameters(150, "2PL", seed=21)
    thetas = np.random.default_rng(22).normal(size=8000)
    res = simulate(Bank(params), CatConfig(randomesque=5, max_items=30, se_threshold=None), thetas,
                   seed=23, keep_responses=True)
    assert res.responses is not None
    return params, thetas, ResponseData.from_long(*res.responses, n_items=150)


def test_pvalue_starts_fail_on_adaptive_data_and_pairwise_starts_do_not(cat_data):
    params, _, data = cat_data
    seen = data.per_item() >= 30
    pvalue = starting_values(data, "2PL", "pvalue").b[seen]
    pairwise = starting_values(data, "2PL", "pairwise").b[seen]
    # adaptive selection gives every item ~50% correct: the p-values carry no order
    assert abs(np.corrcoef(pvalue, params.b[seen])[0, 1]) < 0.5
    assert np.corrcoef(pairwise, params.b[seen])[0, 1] > 0.95
    # this EM recovers from either start (its M-step takes full Fisher-scoring steps, and the
    # weak priors keep sparsely seen items from degenerating); the start saves cycles
    from_p = calibrate(data, "2PL", start="pvalue")
    from_pair = calibrate(data, "2PL", start="pairwise")
    well = from_pair.n_responses >= 300
    assert abs(rmse(from_pair.b[well], params.b[well]) - rmse(from_p.b[well], params.b[well])) < 0.02


def test_recovery_on_adaptive_data_is_close_to_the_mcar_control(cat_data):
    params, thetas, data = cat_data
    r = calibrate(data, "2PL")
    mcar = ResponseData.from_long(*generate_responses(params, thetas, seed=24, items_per_person=30))
    control = calibrate(mcar, "2PL")
    well = r.estimated & (r.n_responses >= 300)
    assert well.sum() >= 60
    cat_rmse, mcar_rmse = rmse(r.b[well], params.b[well]), rmse(control.b[well], params.b[well])
    assert cat_rmse <= mcar_rmse + 0.05, (cat_rmse, mcar_rmse)


def test_online_calibration_of_pretest_items_seeded_into_cat_sessions():
    """40 pretest items over a fixed 200-item operational bank, 4 per session (positions 5, 10,
    15, 20): pretest RMSE(b) <= 0.15 with >= 1,000 responses each."""
    ops = generate_parameters(200, "2PL", seed=31)
    pre = generate_parameters(40, "2PL", seed=32)
    params = type(ops).from_arrays(a=np.r_[ops.a, pre.a], b=np.r_[ops.b, pre.b])
    status = np.r_[np.zeros(200, dtype=np.int8), np.full(40, PRETEST, dtype=np.int8)]
    thetas = np.random.default_rng(33).normal(size=11000)
    res = simulate(Bank(params, status=status),
                   CatConfig(max_items=25, se_threshold=None, pretest_positions=(5, 10, 15, 20)),
                   thetas, seed=34, keep_responses=True)
    assert res.responses is not None
    data = ResponseData.from_long(*res.responses, n_items=240)
    assert data.per_item()[200:].min() >= 1000
    fixed = {i: (float(ops.a[i]), float(ops.b[i]), 0.0) for i in range(200)}
    mem = calibrate(data, "2PL", fixed=fixed, method="mem")
    oem = calibrate(data, "2PL", fixed=fixed, method="oem")
    assert np.allclose(mem.b[:200], ops.b) and np.allclose(mem.a[:200], ops.a)
    assert rmse(mem.b[200:], pre.b) <= 0.15
    assert rmse(oem.b[200:], pre.b) <= 0.2
    decisions = promote(mem, status == PRETEST, max_se_b=0.3, min_responses=1000)
    assert sum(v == "promoted" for v in decisions.values()) >= 30


def test_too_few_responses_are_left_out_with_a_reason():
    params, _data = complete("2PL", 400, 10, seed=5)
    person, item, resp = generate_responses(params, np.zeros(400), seed=6)
    keep = (item != 3) | (person < 10)
    r = calibrate(ResponseData.from_long(person[keep], item[keep], resp[keep]), "2PL", min_responses=30)
    assert 3 in r.left_out and "too few responses" in r.left_out[3] and not r.estimated[3]
    assert np.isnan(r.se_b[3])


def test_fit_flags_a_misfitting_item():
    params, _data = complete("2PL", 4000, 15, seed=7)
    person, item, resp = generate_responses(params, np.random.default_rng(8).normal(size=4000), seed=9)
    resp = resp.copy()
    resp[item == 0] = np.random.default_rng(10).integers(0, 2, (item == 0).sum())  # pure noise
    r = calibrate(ResponseData.from_long(person, item, resp), "2PL")
    assert r.rmsd[0] > 0.05 or r.a[0] < 0.3
    assert np.median(r.rmsd[1:]) < 0.03


def test_summary_and_bad_input():
    _, data = complete("2PL", 500, 8, seed=11)
    s = calibrate(data, "2PL").summary()
    assert s["bic"] > s["aic"] > s["minus_2ll"] > 0 and s["n_responses"] == 4000
    with pytest.raises(ValueError, match="0 or 1"):
        ResponseData.from_long(np.array([0]), np.array([0]), np.array([2]))
    with pytest.raises(ValueError, match="duplicate"):
        ResponseData.from_long(np.array([0, 0]), np.array([1, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="no responses"):
        ResponseData.from_long(np.array([]), np.array([]), np.array([]))


def test_iteration_cap_warns():
    _, data = complete("2PL", 500, 8, seed=12)
    with pytest.warns(CalibrationWarning):
        r = calibrate(data, "2PL", max_iter=2, accelerate=False)
    assert not r.converged


def test_latent_distribution_is_estimated_when_anchored():
    ops = generate_parameters(60, "2PL", seed=41)
    thetas = np.random.default_rng(42).normal(0.5, 1.2, size=5000)
    data = ResponseData.from_long(*generate_responses(ops, thetas, seed=43))
    fixed = {i: (float(ops.a[i]), float(ops.b[i]), 0.0) for i in range(60)}
    r = calibrate(data, "2PL", fixed=fixed, latent="normal")
    assert r.latent_mean == pytest.approx(0.5, abs=0.08) and r.latent_sd == pytest.approx(1.2, abs=0.1)


def test_initial_values_are_used():
    params, data = complete("2PL", 800, 10, seed=13)
    r = calibrate(data, "2PL", initial=ItemEstimates(params.a.copy(), params.b.copy(), np.zeros(10)))
    assert r.converged and rmse(r.b, params.b) < 0.2


def _online_cat_data(persons: int, seed: int):  # type: ignore[no-untyped-def]
    ops = generate_parameters(120, "2PL", seed=seed)
    pre = generate_parameters(10, "2PL", seed=seed + 1)
    params = type(ops).from_arrays(a=np.r_[ops.a, pre.a], b=np.r_[ops.b, pre.b])
    status = np.r_[np.zeros(120, dtype=np.int8), np.full(10, PRETEST, dtype=np.int8)]
    thetas = np.random.default_rng(seed + 2).normal(size=persons)
    res = simulate(Bank(params, status=status), CatConfig(max_items=20, se_threshold=None,
                                                          pretest_positions=(4, 9, 14)),
                   thetas, seed=seed + 3, keep_responses=True)
    assert res.responses is not None
    return ops, pre, res.responses


def test_sharded_em_equals_the_single_process_em() -> None:
    """The managed job's decomposition: E-steps over disjoint shards of persons, summed, give
    the same estimates, SEs, fit and log-likelihood as one pass over all the data."""
    from irtcat.irt.calibration import EMSettings, calibrate_sharded

    ops, pre, (person, item, resp) = _online_cat_data(3000, seed=61)
    fixed_mask = np.r_[np.ones(120, dtype=bool), np.zeros(10, dtype=bool)]
    initial = ItemEstimates(np.r_[ops.a, np.ones(10)], np.r_[ops.b, np.zeros(10)], np.zeros(130))
    whole = ResponseData.from_long(person, item, resp, n_items=130)
    settings = EMSettings(n_nodes=31, tol=1e-5, accelerate=False, max_cycles=200)
    single = calibrate_sharded([whole], initial, fixed_mask, "2PL", settings)
    reference = calibrate(whole, "2PL", fixed={i: (float(ops.a[i]), float(ops.b[i]), 0.0) for i in range(120)},
                          n_nodes=31, tol=1e-5, initial=initial, accelerate=False, max_iter=200)
    shards = []
    for k in range(4):  # persons split by k (mod 4), re-indexed within each shard
        keep = person % 4 == k
        local = np.unique(person[keep], return_inverse=True)[1]
        shards.append(ResponseData.from_long(local, item[keep], resp[keep], n_items=130))
    sharded = calibrate_sharded(shards, initial, fixed_mask, "2PL", settings)
    assert single.converged and sharded.converged and reference.converged
    assert sharded.iterations == single.iterations == reference.iterations
    # sums over shards differ from one sum in the last bits, and the M-step's "no lower" test can
    # then take or refuse a last tiny step: equal to well below the convergence tolerance
    for field in ("a", "b", "se_b", "se_a", "rmsd"):
        got, want = getattr(sharded, field)[120:], getattr(single, field)[120:]
        assert np.allclose(got, want, rtol=1e-6, atol=1e-8), field
        assert np.allclose(getattr(reference, field)[120:], want, rtol=1e-6, atol=1e-8), field
    assert sharded.log_likelihood == pytest.approx(single.log_likelihood, rel=1e-10)
    assert np.array_equal(sharded.b[:120], ops.b)  # operational items never move
    assert rmse(sharded.b[120:], pre.b) <= 0.25  # and the pretest items are recovered


def test_floated_slope_prior_follows_the_bank():
    """A slope prior fixed at a = 1 drags a bank of steep items down; floated (the default) its
    mean follows the estimated slopes, so bias and error shrink (sparse data: 8 of 40 items)."""
    rng = np.random.default_rng(22)
    params = ItemParameters.from_arrays(a=rng.normal(2.0, 0.2, 40), b=rng.normal(0, 1, 40), c=np.zeros(40),
                                        d=np.ones(40), scale=1.0)
    data = ResponseData.from_long(*generate_responses(params, rng.normal(size=1500), seed=22, items_per_person=8))
    fixed_mean = calibrate(data, "2PL", priors=Priors(log_a=(0.0, 0.5), b=(0.0, 3.0)))
    floated = calibrate(data, "2PL")
    assert Priors.default("2PL").float_log_a
    assert abs(np.mean(floated.a - params.a)) < 0.5 * abs(np.mean(fixed_mean.a - params.a))
    assert rmse(floated.a, params.a) < rmse(fixed_mean.a, params.a) - 0.03
    assert rmse(floated.b, params.b) < rmse(fixed_mean.b, params.b)
    # the floated mean is the mean log slope; a prior that does not float is left alone
    a = np.array([1.0, 2.0, 4.0])
    assert Priors(log_a=(0.0, 0.5), float_log_a=True).floated(a).log_a == pytest.approx((np.log(2.0), 0.5))
    assert Priors(log_a=(0.0, 0.5)).floated(a).log_a == (0.0, 0.5)
