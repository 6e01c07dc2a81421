"""Closed-form checks of item response functions and information."""

import numpy as np
import pytest
from irtcat.irt.model import (
    ItemParameters,
    information,
    log_likelihood_table,
    prob,
    prob_derivatives,
)


def test_rasch_probability_at_difficulty_is_one_half():
    items = ItemParameters.from_arrays(b=[-1.0, 0.0, 2.0])
    assert prob(np.array([[-1.0], [0.0], [2.0]]), items).diagonal() == pytest.approx([0.5] * 3)


def test_3pl_probability_closed_form():
    items = ItemParameters.from_arrays(a=[1.5], b=[0.5], c=[0.2])
    theta = 1.3
    expected = 0.2 + 0.8 / (1 + np.exp(-1.5 * (theta - 0.5)))
    assert prob(theta, items)[0] == pytest.approx(expected, rel=1e-12)


def test_4pl_asymptotes():
    items = ItemParameters.from_arrays(a=[2.0], b=[0.0], c=[0.1], d=[0.9])
    assert prob(-40.0, items)[0] == pytest.approx(0.1, abs=1e-9)
    assert prob(40.0, items)[0] == pytest.approx(0.9, abs=1e-9)


def test_normal_metric_scales_slope():
    items = ItemParameters.from_arrays(a=[1.0], b=[0.0], scale=1.702)
    assert prob(1.0, items)[0] == pytest.approx(1 / (1 + np.exp(-1.702)), rel=1e-12)


@pytest.mark.parametrize("c,d", [(0.0, 1.0), (0.25, 1.0), (0.2, 0.95)])
def test_information_matches_closed_form(c, d):
    a, b = 1.7, -0.4
    items = ItemParameters.from_arrays(a=[a], b=[b], c=[c], d=[d])
    theta = np.linspace(-3, 3, 13)
    p = c + (d - c) / (1 + np.exp(-a * (theta - b)))
    expected = a**2 * (p - c) ** 2 * (d - p) ** 2 / ((d - c) ** 2 * p * (1 - p))
    np.testing.assert_allclose(information(theta[:, None], items)[:, 0], expected, rtol=1e-10)


def test_2pl_information_is_a_squared_pq_and_peaks_at_b():
    items = ItemParameters.from_arrays(a=[1.3], b=[0.7])
    assert information(0.7, items)[0] == pytest.approx(1.3**2 * 0.25)
    grid = np.linspace(-2, 3, 501)
    assert grid[np.argmax(information(grid[:, None], items)[:, 0])] == pytest.approx(0.7, abs=0.01)


def test_derivatives_match_finite_differences():
    items = ItemParameters.from_arrays(a=[0.8, 2.0], b=[0.3, -1.0], c=[0.15, 0.0], d=[1.0, 0.97])
    t, h = np.array([[0.4]]), 1e-5
    p, dp, d2p = prob_derivatives(t, items)
    num1 = (prob(t + h, items) - prob(t - h, items)) / (2 * h)
    num2 = (prob(t + h, items) - 2 * p + prob(t - h, items)) / h**2
    np.testing.assert_allclose(dp, num1, rtol=1e-6)
    np.testing.assert_allclose(d2p, num2, rtol=1e-3)


def test_float32_information_ranks_like_float64():
    rng = np.random.default_rng(5)
    items = ItemParameters.from_arrays(a=rng.uniform(0.5, 2, 300), b=rng.normal(size=300), c=rng.uniform(0, 0.3, 300))
    for t in (-2.0, 0.0, 1.5):
        i64 = information(np.array([[t]]), items)[0]
        i32 = information(np.array([[t]]), items.astype(np.float32))[0]
        assert i32.dtype == np.float32
        np.testing.assert_allclose(i32, i64, rtol=1e-3, atol=1e-6)
        assert np.argmax(i32) == np.argmax(i64)


def test_log_likelihood_table_shape_and_values():
    items = ItemParameters.from_arrays(a=[1.0, 2.0], b=[0.0, 1.0], c=[0.0, 0.2])
    nodes = np.linspace(-4, 4, 9)
    table = log_likelihood_table(items, nodes)
    assert table.shape == (2, 2, 9)
    np.testing.assert_allclose(np.exp(table).sum(axis=1), 1.0)
    np.testing.assert_allclose(table[1, 1], np.log(prob(nodes[:, None], items)[:, 1]))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"a": [0.0], "b": [0.0]}, "a must be > 0"),
        ({"b": [0.0], "c": [1.0]}, "guessing"),
        ({"b": [0.0], "c": [0.3], "d": [0.2]}, "upper asymptote"),
        ({"b": [np.nan]}, "non-finite"),
    ],
)
def test_invalid_parameters_are_rejected_with_a_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ItemParameters.from_arrays(**kwargs)
