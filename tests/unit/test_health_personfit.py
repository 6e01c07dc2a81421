"""Person fit (lz*) on fitting and preknowledge simulees, and rapid-guess flags."""

from __future__ import annotations

import numpy as np
from irtcat.irt.health.personfit import effort, lz_star, misfitting, rapid_thresholds, response_seconds
from irtcat.irt.model import ItemParameters


def _simulees(n: int = 1000, k: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.8, 2.0, k), rng.normal(0, 1, k)
    theta = rng.normal(size=n)
    x = (rng.random((n, k)) < 1 / (1 + np.exp(-a * (theta[:, None] - b)))).astype(int)
    return x, a, b, theta


def _map(row: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    grid = np.linspace(-4, 4, 401)
    p = 1 / (1 + np.exp(-a * (grid[:, None] - b)))
    return float(grid[np.argmax((row * np.log(p) + (1 - row) * np.log(1 - p)).sum(axis=1) - grid**2 / 2)])


def test_lz_star_holds_its_level_on_fitting_patterns_and_finds_preknowledge() -> None:
    """1,000 simulees on 40 2PL items, MAP estimates under N(0, 1): fitting patterns flagged at
    most 6% at alpha .05; with the answers to the hardest 20% known beforehand, at least 80%."""
    x, a, b, _ = _simulees()
    params = ItemParameters(a, b, np.zeros(a.size), np.ones(a.size), 1.0)
    fitting = [misfitting(lz_star(r, params, _map(r, a, b), (0.0, 1.0))) for r in x]
    assert np.mean(fitting) <= 0.06
    cheat = x.copy()
    cheat[:, np.argsort(-b)[: a.size // 5]] = 1
    flagged = [misfitting(lz_star(r, params, _map(r, a, b), (0.0, 1.0))) for r in cheat]
    assert np.mean(flagged) >= 0.8


def test_lz_star_is_standardised_against_a_hand_computation() -> None:
    """Two items at theta 0 with ML (r_0 = 0): every term by hand."""
    params = ItemParameters(np.array([1.0, 2.0]), np.array([0.0, 1.0]), np.zeros(2), np.ones(2), 1.0)
    p = 1 / (1 + np.exp(-np.array([0.0, -2.0])))
    dp = np.array([1.0, 2.0]) * p * (1 - p)
    w, r = np.log(p / (1 - p)), dp / (p * (1 - p))
    c = np.sum(dp * w) / np.sum(dp * r)
    x = np.array([1, 0])
    l0 = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p))
    e = np.sum(p * np.log(p) + (1 - p) * np.log(1 - p))
    expected = (l0 - e) / np.sqrt(np.sum(p * (1 - p) * (w - c * r) ** 2))
    assert np.isclose(lz_star(x, params, 0.0), expected)


def test_rapid_guesses_and_response_time_effort() -> None:
    thresholds = rapid_thresholds(np.log(np.array([30.0, 200.0, 8.0])))
    assert np.allclose(thresholds, [3.0, 10.0, 0.8])  # 10% of the typical time, capped at 10 s
    # the tablet claims 2 s where the server saw 9 s (kept: a tablet may claim less), and 60 s
    # where the server saw 12 s (bounded: never more than the server measured)
    seconds = response_seconds(np.array([2000.0, 60000.0, 5000.0]), np.array([9000.0, 12000.0, 5100.0]))
    assert np.allclose(seconds, [2.0, 12.0, 5.0])
    rapid, rte, flagged = effort(seconds, thresholds)
    assert rapid.tolist() == [True, False, False] and np.isclose(rte, 2 / 3) and flagged
    assert not effort(np.full(20, 30.0), np.full(20, 3.0))[2]


def test_reliability_formulas_on_known_values() -> None:
    from irtcat.irt.health.reliability import (
        best_test_information,
        conditional_sem,
        empirical_reliability,
        information_reliability,
    )

    theta, se = np.array([-1.0, 0.0, 1.0]), np.full(3, 0.5)
    assert np.isclose(empirical_reliability(theta, se), 1.0 / (1.0 + 0.25))  # var 1, mean SE^2 .25
    assert np.isclose(empirical_reliability(theta, se, "ML"), 0.75)
    grid = np.linspace(-6, 6, 121)
    assert np.isclose(information_reliability(np.full(grid.size, 4.0), grid), 1 / (1 + 0.25))
    assert np.allclose(best_test_information(np.array([[1.0, 3.0, 2.0]]), 2), [5.0])
    bands = conditional_sem(np.array([-0.5, 0.5, 0.6]), np.array([0.3, 0.2, 0.4]), np.array([-1.0, 0.0, 1.0]))
    assert bands[0][2] == 1 and np.isclose(bands[1][3], np.sqrt((0.04 + 0.16) / 2))


def test_lz_star_over_categories_reduces_to_the_right_wrong_formula() -> None:
    from irtcat.irt.health.personfit import lz_star_categories
    from irtcat.irt.model import prob, prob_derivatives

    x, a, b, _ = _simulees(n=5, k=25, seed=4)
    params = ItemParameters(a, b, np.zeros(a.size), np.ones(a.size), 1.0)
    for row in x:
        theta = _map(row, a, b)
        p = prob(np.array([[theta]]), params)[0]
        dp = prob_derivatives(np.array([[theta]]), params)[1][0]
        probs = [np.array([1 - pk, pk]) for pk in p]
        derivs = [np.array([-d, d]) for d in dp]
        assert np.isclose(lz_star_categories(row, probs, derivs, theta, (0.0, 1.0)),
                          lz_star(row, params, theta, (0.0, 1.0)), atol=1e-10)


def test_lz_star_on_partial_credit_items_holds_its_level_and_finds_preknowledge() -> None:
    """1,000 simulees on 30 GPCM items of four categories, MAP under N(0, 1): fitting patterns
    flagged at most 7% at alpha .05 (Sinharay's standardisation); with the top category on the
    hardest 20% known beforehand, at least 70%."""
    from irtcat.irt.health.personfit import lz_star_categories
    from irtcat.irt.polytomous import PolytomousItems, category_derivatives, category_probabilities

    rng = np.random.default_rng(8)
    k = 30
    thresholds = np.sort(rng.normal(0, 1, (k, 3)), axis=1)
    items = PolytomousItems.build(["GPCM"] * k, list(rng.uniform(0.8, 1.8, k)), thresholds.tolist(), scale=1.0)
    grid = np.linspace(-4, 4, 401)
    table = category_probabilities(grid, items)  # (grid, items, 4)
    theta = rng.normal(size=1000)
    p_true = category_probabilities(theta, items)
    x = (rng.random((1000, k, 1)) > np.cumsum(p_true, axis=2)).sum(axis=2)

    def lz(row: np.ndarray) -> float:
        loglik = np.log(table[:, np.arange(k), row]).sum(axis=1) - grid**2 / 2
        est = float(grid[np.argmax(loglik)])
        p, dp = category_derivatives(np.array([est]), items)
        return lz_star_categories(row, list(p[0]), list(dp[0]), est, (0.0, 1.0))

    assert np.mean([misfitting(lz(r)) for r in x]) <= 0.07
    cheat = x.copy()
    cheat[:, np.argsort(-thresholds.mean(axis=1))[: k // 5]] = 3
    assert np.mean([misfitting(lz(r)) for r in cheat]) >= 0.7
