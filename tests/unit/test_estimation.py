"""Estimators against brute-force integrals and root finders, and on degenerate patterns."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from irtcat.irt.estimation import NormalPrior, Quadrature, eap, estimate, map_estimate, mle, wle
from irtcat.irt.model import ItemParameters, prob, prob_derivatives
from scipy import integrate, optimize

ITEMS = ItemParameters.from_arrays(
    a=[1.2, 0.8, 1.5, 2.0, 1.0, 0.7], b=[-1.5, -0.5, 0.0, 0.4, 1.0, 2.0], c=[0.2, 0.0, 0.15, 0.1, 0.25, 0.0]
)
PATTERN = np.array([[1, 1, 0, 1, 0, 0]], dtype=float)


def likelihood(t: float, x=PATTERN[0], items=ITEMS) -> float:
    p = prob(t, items)
    return float(np.prod(np.where(x == 1, p, 1 - p)))


def test_eap_matches_brute_force_integral():
    prior = NormalPrior(0.3, 1.2)
    dens = lambda t: likelihood(t) * np.exp(-0.5 * ((t - 0.3) / 1.2) ** 2)  # noqa: E731
    z = integrate.quad(dens, -10, 10)[0]
    mean = integrate.quad(lambda t: t * dens(t), -10, 10)[0] / z
    var = integrate.quad(lambda t: (t - mean) ** 2 * dens(t), -10, 10)[0] / z
    est = eap(PATTERN, ITEMS, prior, Quadrature(n=161, lo=-7, hi=7))
    assert est.theta[0] == pytest.approx(mean, abs=1e-4)
    assert est.se[0] == pytest.approx(np.sqrt(var), abs=1e-4)


def test_map_is_the_posterior_mode():
    prior = NormalPrior(0.0, 1.0)
    neg = lambda t: -(np.log(likelihood(t)) - 0.5 * t * t)  # noqa: E731
    mode = optimize.minimize_scalar(neg, bounds=(-5, 5), method="bounded", options={"xatol": 1e-10}).x
    assert map_estimate(PATTERN, ITEMS, prior).theta[0] == pytest.approx(mode, abs=1e-5)


def score(t: float, warm: bool) -> float:
    p, dp, d2p = prob_derivatives(np.array([t]), ITEMS)
    pq = p * (1 - p)
    s = np.sum((PATTERN[0] - p) * dp / pq)
    if warm:
        s += np.sum(dp * d2p / pq) / (2 * np.sum(dp * dp / pq))
    return float(s)


def test_mle_matches_root_of_the_score():
    root = optimize.brentq(score, -4, 4, args=(False,), xtol=1e-12)
    est = mle(PATTERN, ITEMS)
    assert not est.fallback[0]
    assert est.theta[0] == pytest.approx(root, abs=1e-6)
    info = np.sum(prob_derivatives(np.array([root]), ITEMS)[1] ** 2 / (prob(root, ITEMS) * (1 - prob(root, ITEMS))))
    assert est.se[0] == pytest.approx(1 / np.sqrt(info), rel=1e-4)


def test_wle_matches_root_of_warms_weighted_score():
    root = optimize.brentq(score, -4, 4, args=(True,), xtol=1e-12)
    assert wle(PATTERN, ITEMS).theta[0] == pytest.approx(root, abs=1e-6)


def test_wle_is_finite_for_perfect_2pl_patterns_and_mle_falls_back():
    items = ItemParameters.from_arrays(a=[1.0, 1.4, 0.9, 1.2], b=[-1, 0, 0.5, 1])
    for value, sign in ((1.0, 1), (0.0, -1)):
        x = np.full((1, 4), value)
        w = wle(x, items)
        assert not w.fallback[0] and np.sign(w.theta[0]) == sign and abs(w.theta[0]) < 6
        m = mle(x, items)
        assert m.fallback[0]
        assert m.theta[0] == pytest.approx(eap(x, items).theta[0])


@pytest.mark.parametrize("method", ["EAP", "MAP", "MLE", "WLE"])
def test_empty_pattern_returns_the_prior(method):
    prior = NormalPrior(0.5, 1.5)
    est = estimate(method, np.full((1, 6), np.nan), ITEMS, prior, Quadrature(n=121, lo=-7, hi=7))
    assert est.theta[0] == pytest.approx(0.5, abs=1e-3)
    assert est.se[0] == pytest.approx(1.5, rel=1e-2)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 1.0, np.nan]), min_size=6, max_size=6),
    st.sampled_from(["EAP", "MAP", "MLE", "WLE"]),
)
def test_every_estimator_is_finite_for_every_pattern(pattern, method):
    est = estimate(method, np.array([pattern]), ITEMS)
    assert np.all(np.isfinite(est.theta)) and np.all(np.isfinite(est.se)) and np.all(est.se > 0)


def test_estimators_are_vectorised_over_examinees():
    x = np.array([[1, 1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1], [1, np.nan, 1, np.nan, 0, np.nan]], dtype=float)
    for method in ("EAP", "MAP", "MLE", "WLE"):
        batch = estimate(method, x, ITEMS)
        for k in range(3):
            single = estimate(method, x[k:k + 1], ITEMS)
            assert batch.theta[k] == pytest.approx(single.theta[0], abs=1e-9)


def test_bad_responses_and_unknown_estimator_are_rejected():
    with pytest.raises(ValueError, match="0, 1 or NaN"):
        eap(np.array([[2.0, 0, 0, 0, 0, 0]]), ITEMS)
    with pytest.raises(ValueError, match="unknown estimator"):
        estimate("BOGUS", PATTERN, ITEMS)  # type: ignore[arg-type]


def test_eap_point_equals_the_vectorised_eap():
    from irtcat.irt.estimation import eap_from_log_posterior, eap_point

    q = Quadrature()
    rng = np.random.default_rng(1)
    for _ in range(20):
        lp = rng.normal(0, 5, q.n)
        th, se = eap_from_log_posterior(lp[None, :], q.nodes)
        p_th, p_se = eap_point(lp, q.nodes, q.nodes_sq)
        assert p_th == pytest.approx(th[0], abs=1e-12) and p_se == pytest.approx(se[0], abs=1e-12)
