"""Item fit (S-X2, RMSD): mirt's published LSAT7 values, the Lord-Wingersky recursion, the
multiple-testing corrections, and a small recovery study (the full one is ``./dev bench --only
health``)."""

from __future__ import annotations

import numpy as np
import pytest
from irtcat.irt.calibration import ResponseData
from irtcat.irt.calibration.engine import calibrate
from irtcat.irt.calibration.priors import Priors
from irtcat.irt.health.common import MISSING, ItemCurves, adjust_p, normal_grid, right_wrong_curves
from irtcat.irt.health.itemfit import ADAPTIVE_NOTE, item_fit, s_x2, summed_score_distribution
from irtcat.irt.model import ItemParameters

# LSAT section 7 (Bock & Aitkin 1981; mirt's ``LSAT7``): the 32 patterns of 5 items, in binary
# order (item 1 the most significant), and their frequencies (1,000 examinees)
LSAT7_FREQ = [12, 19, 1, 7, 3, 19, 3, 17, 10, 5, 3, 7, 7, 23, 8, 28,
              7, 39, 11, 34, 14, 51, 15, 90, 6, 25, 7, 35, 18, 136, 32, 308]
# mirt 2PL (slope-intercept a, d) and itemfit(mod, mincell = 0)$S_X2, df 2 each
MIRT_A = [0.9879, 1.0809, 1.7058, 0.7652, 0.7358]
MIRT_D = [1.8561, 0.8080, 1.8042, 0.4860, 1.8545]
MIRT_S_X2 = [4.7492191, 14.4528980, 1.2703374, 5.2373430, 0.9407036]


def lsat7() -> np.ndarray:
    patterns = np.array([[int(c) for c in f"{k:05b}"] for k in range(32)])
    return np.repeat(patterns, LSAT7_FREQ, axis=0)


def curves_of(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None, n_params: int = 2,
              upper: np.ndarray | None = None) -> tuple[ItemCurves, np.ndarray]:
    theta, w = normal_grid()
    k = a.size
    params = ItemParameters(a, b, np.zeros(k) if c is None else c, np.ones(k) if upper is None else upper, 1.0)
    return ItemCurves(tuple(right_wrong_curves(params, theta)), np.full(k, n_params)), w


def test_lord_wingersky_gives_the_summed_score_distribution() -> None:
    half = np.array([[0.5, 0.5]])
    assert np.allclose(summed_score_distribution([half, half]), [[0.25, 0.5, 0.25]])
    three = np.array([[0.2, 0.3, 0.5]])  # a partial-credit item scoring 0, 1, 2
    assert np.allclose(summed_score_distribution([half, three]), [[0.1, 0.25, 0.4, 0.25]])


def test_s_x2_on_lsat7_matches_mirt_with_mirts_parameters_and_with_ours() -> None:
    x = lsat7()
    assert x.shape == (1000, 5)
    a, d = np.array(MIRT_A), np.array(MIRT_D)
    curves, w = curves_of(a, -d / a)
    theirs = s_x2(x, curves, w, mincell=0)
    assert [s[1] for s in theirs] == [2] * 5
    assert np.allclose([s[0] for s in theirs], MIRT_S_X2, rtol=1e-3)
    # our own calibration (2PL, no priors) then S-X2: the bar is 2%
    rows, cols = np.nonzero(np.ones_like(x))
    fit = calibrate(ResponseData.from_long(rows, cols, x[rows, cols], n_persons=1000, n_items=5), "2PL",
                    priors=Priors(), n_nodes=61)
    ours, w = curves_of(fit.a, fit.b)
    mine = s_x2(x, ours, w, mincell=0)
    assert [s[1] for s in mine] == [2] * 5
    assert np.allclose([s[0] for s in mine], MIRT_S_X2, rtol=0.02)


def test_sparse_score_groups_are_collapsed_and_df_follows() -> None:
    x = lsat7()
    a, d = np.array(MIRT_A), np.array(MIRT_D)
    curves, w = curves_of(a, -d / a)
    loose = s_x2(x, curves, w, mincell=0)
    strict = s_x2(x, curves, w, mincell=60)  # the low score groups hold fewer: merged
    assert all(s[3] < 4 and s[1] == s[3] - 2 for s in strict)
    assert all(s[3] == 4 for s in loose)


def test_multiple_testing_corrections() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan])
    # Benjamini-Hochberg: sorted p * m / rank = .04, .06, .0533, .2, then the running minimum from the top
    assert np.allclose(adjust_p(p, "bonferroni")[:4], [0.04, 0.16, 0.12, 0.8])
    assert np.allclose(adjust_p(p, "bh")[:4], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])
    assert np.isnan(adjust_p(p, "bh")[4]) and np.array_equal(adjust_p(p, "none")[:4], p[:4])
    with pytest.raises(ValueError, match="unknown adjustment"):
        adjust_p(p, "holm")  # type: ignore[arg-type]


def test_off_model_items_are_flagged_and_fitting_items_are_not() -> None:
    """5,000 x 20 answers; items 0-2 have an upper asymptote of 0.65 (slope 2, b -1, -0.5, 0),
    the rest are 2PL; all fit as 2PL. At alpha .05 (no adjustment) the three are flagged, and
    at most 2 of the 17 others (expected 0.85, a little more as the misfit leaks into every
    item's summed-score groups). The replicated study is the ``health`` benchmark."""
    rng = np.random.default_rng(100)
    k, n = 20, 5000
    a, b = rng.uniform(0.8, 2.0, k), rng.normal(0, 1, k)
    upper = np.ones(k)
    upper[:3], a[:3], b[:3] = 0.65, 2.0, [-1.0, -0.5, 0.0]
    theta = rng.normal(size=n)
    p = upper / (1 + np.exp(-a * (theta[:, None] - b)))
    x = (rng.random((n, k)) < p).astype(np.int64)
    rows, cols = np.nonzero(np.ones_like(x))
    fit = calibrate(ResponseData.from_long(rows, cols, x[rows, cols], n_persons=n, n_items=k), "2PL",
                    priors=Priors(), n_nodes=61)
    curves, w = curves_of(fit.a, fit.b)
    items, note = item_fit(x, curves, w, adjust="none")
    assert note is None
    flagged = [i for i, f in enumerate(items) if f.flagged]
    assert {0, 1, 2} <= set(flagged) and len(flagged) <= 5, flagged
    assert min(f.rmsd for f in items[:3]) > max(f.rmsd for f in items[3:])


def test_adaptive_data_report_rmsd_only_and_say_why() -> None:
    x = lsat7()
    x[::3, 0] = MISSING
    a, d = np.array(MIRT_A), np.array(MIRT_D)
    curves, w = curves_of(a, -d / a)
    items, note = item_fit(x, curves, w)
    assert note == ADAPTIVE_NOTE
    assert all(np.isnan(f.s_x2) and 0 < f.rmsd < 0.1 and not f.flagged for f in items)
    with pytest.raises(ValueError, match="not comparable"):
        s_x2(x, curves, w)
