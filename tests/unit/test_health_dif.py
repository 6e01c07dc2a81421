"""DIF: Mantel-Haenszel (ETS classes) and the IRT likelihood-ratio test on a simulated study
with planted uniform and non-uniform DIF (the replicated study is ``./dev bench --only health``)."""

from __future__ import annotations

import numpy as np
import pytest
from irtcat.irt.datagen import planted_dif
from irtcat.irt.health.common import MISSING
from irtcat.irt.health.dif import dif, ets_class, mantel_haenszel


def planted(n: int = 2000, k: int = 20, seed: int = 1
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """n reference and n focal (mean -0.5) examinees on k 2PL items; items 0-2 harder for the
    focal group by 1.2 in log-odds (MH delta near -2.8), item 3 with the focal slope x0.3."""
    return planted_dif(n, k, seed)


def test_mantel_haenszel_on_a_known_table() -> None:
    """One stratum: reference 30 right / 10 wrong, focal 20 right / 20 wrong: alpha = (30*20)/(10*20)
    = 3, delta = -2.35 ln 3; the chi-square by hand: E(A) = 40*50/80 = 25, Var = 40*40*50*30/(80^2*79)."""
    right = np.r_[np.ones(30), np.zeros(10), np.ones(20), np.zeros(20)].astype(int)
    focal = np.r_[np.zeros(40, bool), np.ones(40, bool)]
    mh = mantel_haenszel(right, focal, np.zeros(80, int))
    assert mh.delta == pytest.approx(-2.35 * np.log(3.0))
    assert mh.chi2 == pytest.approx((5 - 0.5) ** 2 / (40 * 40 * 50 * 30 / (80**2 * 79)))
    assert ets_class(-0.8, 0.1, 0.001) == "A" and ets_class(-2.0, 0.2, 0.001) == "C"
    assert ets_class(-1.3, 0.2, 0.001) == "B" and ets_class(-2.0, 0.2, 0.2) == "A"


def test_planted_dif_is_found_and_other_items_are_left_alone() -> None:
    x, focal, a, b, _ = planted()
    results = dif(x, focal, a, b, np.zeros(a.size))
    for r in results[:3]:  # uniform DIF: class C, delta near -2.8, found by the LR test's b step
        assert r.mh.ets_class == "C" and -3.4 < r.mh.delta < -2.2 and r.flagged and r.lr_uniform_p < 1e-6
    assert results[3].lr_nonuniform_p < 1e-6 and results[3].flagged  # the slope step finds non-uniform DIF
    assert sum(r.flagged for r in results[4:]) <= 1
    assert all(r.lr_df == 2 for r in results)


def test_adaptive_data_are_matched_on_ability() -> None:
    x, focal, a, b, theta = planted(n=1500, k=12, seed=2)
    sparse = x.copy()
    rng = np.random.default_rng(3)
    sparse[rng.random(x.shape) < 0.3] = MISSING
    with pytest.raises(ValueError, match="ability estimates"):
        dif(sparse, focal, a, b, np.zeros(a.size))
    # ability estimates leaving each item out: the generating theta plus estimation noise stands in
    noisy = theta[:, None] + rng.normal(0, 0.3, (3000, a.size))
    results = dif(sparse, focal, a, b, np.zeros(a.size), theta=noisy, likelihood_ratio=False)
    assert all(r.mh.delta < -1.5 for r in results[:3])
    assert all(r.lr_df == 0 and np.isnan(r.lr_p) for r in results)


def test_partial_credit_dif_by_mantel_and_smd() -> None:
    """2,000 + 2,000 examinees (focal mean -0.5) on 10 GPCM items of four categories; items 0
    and 1 are harder for the focal group (thresholds +0.6 at every ability). Matched on ability
    strata from the other items' EAP, Mantel's test and the SMD find them (ETS class C, SMD
    negative) and flag at most one of the others; the health study reports them."""
    from irtcat.domain.bank import ItemBank
    from irtcat.domain.health import dif_study, response_matrix
    from irtcat.irt.polytomous import PolytomousItems, category_probabilities

    rng = np.random.default_rng(12)
    k, n = 10, 2000
    a, th = rng.uniform(0.9, 1.6, k), np.sort(rng.normal(0, 0.8, (k, 3)), axis=1)
    theta = np.r_[rng.normal(0, 1, n), rng.normal(-0.5, 1, n)]
    focal = np.r_[np.zeros(n, bool), np.ones(n, bool)]
    shifted = th.copy()
    shifted[:2] += 0.6
    x = np.empty((2 * n, k), int)
    for group, thresholds in ((~focal, th), (focal, shifted)):
        items = PolytomousItems.build(["GPCM"] * k, list(a), thresholds.tolist(), scale=1.0)
        p = category_probabilities(theta[group], items)
        x[group] = (rng.random((int(group.sum()), k, 1)) > np.cumsum(p, axis=2)).sum(axis=2)
    bank = ItemBank.model_validate({"bank_id": "pc", "version": 1, "model": "2PL", "scale": 1.0, "items": [
        {"item_id": f"g{j}", "model": "GPCM", "a": float(a[j]), "b": th[j].tolist()} for j in range(k)]})
    people = [f"p{i}" for i in range(2 * n) for _ in range(k)]
    people_ids, positions, matrix = response_matrix(people, [f"g{j}" for _ in range(2 * n) for j in range(k)],
                                                    x.reshape(-1), bank)
    values = {f"p{i}": "f" if focal[i] else "r" for i in range(2 * n)}
    study = dif_study(bank, people_ids, positions, matrix, values, "f", "r")
    by_id = {row["item_id"]: row for row in study["items"]}
    for j in (0, 1):
        assert by_id[f"g{j}"]["ets_class"] == "C" and by_id[f"g{j}"]["smd"] < -0.2, by_id[f"g{j}"]
    assert sum(by_id[f"g{j}"]["flagged"] for j in range(2, k)) <= 1
