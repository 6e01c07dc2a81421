"""Partial-credit models (GRM, GPCM) against hand-computed values, the 2PL they reduce to, and
numerical derivatives; their information against the Fisher information by finite
differences; responses drawn from them against their probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from irtcat.irt.model import ItemParameters
from irtcat.irt.model import information as information_2pl
from irtcat.irt.model import prob as prob_2pl
from irtcat.irt.polytomous import (
    PolytomousItems,
    category_derivatives,
    category_probabilities,
    draw_responses,
    information,
    log_likelihood_table,
)

THETA = np.linspace(-3, 3, 13)


def sigmoid(z: float) -> float:
    return float(1 / (1 + np.exp(-z)))


def test_hand_computed_probabilities_at_theta_zero() -> None:
    items = PolytomousItems.build(["GRM", "GPCM"], [1.0, 1.0], [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
    p = category_probabilities([0.0], items)[0]
    # GRM: P* = (s(1), s(0), s(-1)), P_k = P*_k - P*_{k+1}
    s1, s0 = sigmoid(1.0), 0.5
    assert p[0] == pytest.approx([1 - s1, s1 - s0, s0 - (1 - s1), 1 - s1])
    # GPCM: cumulative sums of a (theta - b_v) are (0, 1, 1, 0), so P is proportional to (1, e, e, 1)
    e = np.e
    assert p[1] == pytest.approx(np.array([1, e, e, 1]) / (2 + 2 * e))


@pytest.mark.parametrize("model", ["GRM", "GPCM"])
def test_one_threshold_is_the_2pl(model: str) -> None:
    a, b = np.array([0.7, 1.3, 2.1]), np.array([-1.2, 0.3, 1.5])
    items = PolytomousItems.build([model] * 3, a, [[x] for x in b], scale=1.702)
    twopl = ItemParameters.from_arrays(a=a, b=b, scale=1.702)
    p = category_probabilities(THETA, items)
    assert p[:, :, 1] == pytest.approx(prob_2pl(THETA[:, None], twopl), abs=1e-9)
    assert information(THETA, items) == pytest.approx(information_2pl(THETA[:, None], twopl), rel=1e-6)


def mixed_items() -> PolytomousItems:
    return PolytomousItems.build(
        ["GRM", "GPCM", "GRM", "GPCM", "GPCM"], [1.4, 0.8, 2.0, 1.1, 1.0],
        [[-1.5, -0.2, 0.9], [0.5, -0.4, 1.2], [0.0], [-2.0, -1.0, 0.0, 2.5], [1.0, -1.0]])


def test_probabilities_sum_to_one_and_missing_categories_are_zero() -> None:
    items = mixed_items()
    p = category_probabilities(THETA, items)
    assert p.shape == (THETA.size, 5, 5)
    assert np.all(p >= 0)
    assert p.sum(axis=2) == pytest.approx(np.ones((THETA.size, 5)))
    for j, m in enumerate(items.categories):
        assert np.all(p[:, j, m:] == 0)


def test_derivatives_match_finite_differences() -> None:
    items, h = mixed_items(), 1e-5
    _, dp = category_derivatives(THETA, items)
    numeric = (category_probabilities(THETA + h, items) - category_probabilities(THETA - h, items)) / (2 * h)
    assert dp == pytest.approx(numeric, abs=1e-7)


def test_information_is_the_fisher_information() -> None:
    """I = E[(d log P_X / d theta)^2], with the score by finite differences of log P."""
    items, h = mixed_items(), 1e-5
    p = category_probabilities(THETA, items)
    with np.errstate(divide="ignore", invalid="ignore"):
        up, down = np.log(category_probabilities(THETA + h, items)), np.log(category_probabilities(THETA - h, items))
        score = (up - down) / (2 * h)
    fisher = np.nansum(np.where(p > 0, p * score**2, 0.0), axis=2)
    assert information(THETA, items) == pytest.approx(fisher, rel=1e-5)


def test_gpcm_information_is_scaled_score_variance() -> None:
    """Muraki (1993): I = (D a)^2 Var(k | theta)."""
    items = PolytomousItems.build(["GPCM"], [1.3], [[-0.5, 0.4, 1.1]], scale=1.702)
    p = category_probabilities(THETA, items)[:, 0]
    k = np.arange(4)
    var = (p * k**2).sum(axis=1) - (p * k).sum(axis=1) ** 2
    assert information(THETA, items)[:, 0] == pytest.approx((1.702 * 1.3) ** 2 * var)


def test_log_likelihood_table_shape_and_missing_categories() -> None:
    items = mixed_items()
    nodes = np.linspace(-4, 4, 21)
    table = log_likelihood_table(items, nodes)
    assert table.shape == (5, 5, 21)
    assert np.exp(table[1, :4]).sum(axis=0) == pytest.approx(np.ones(21))
    assert np.all(np.isneginf(table[2, 2:]))


def test_drawn_responses_follow_the_model() -> None:
    items = mixed_items()
    rng = np.random.default_rng(11)
    n = 40_000
    which = np.repeat(np.arange(5), n // 5)
    theta = np.full(which.size, 0.3)
    x = draw_responses(theta, items.subset(which), rng)
    p = category_probabilities([0.3], items)[0]
    for j in range(5):
        freq = np.bincount(x[which == j], minlength=5) / (n // 5)
        # 4 standard errors of a share out of 8,000
        assert freq == pytest.approx(p[j], abs=4 * np.sqrt(0.25 / (n // 5)))
        assert x[which == j].max() < items.categories[j]


def test_bad_items_are_refused_with_the_item_named() -> None:
    with pytest.raises(ValueError, match="item 0: graded response thresholds must increase"):
        PolytomousItems.build(["GRM"], [1.0], [[0.5, -0.5]])
    with pytest.raises(ValueError, match="item 1: needs a > 0"):
        PolytomousItems.build(["GPCM", "GPCM"], [1.0, 0.0], [[0.0], [0.0]])
    with pytest.raises(ValueError, match="unknown partial-credit model 'NRM'"):
        PolytomousItems.build(["NRM"], [1.0], [[0.0]])
    with pytest.raises(ValueError, match="item 0: needs 1 or more thresholds"):
        PolytomousItems.build(["GPCM"], [1.0], [[]])
