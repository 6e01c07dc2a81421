"""Linking constants: exact recovery of a known rescaling by every method (right/wrong and
partial-credit items), and SEs that reflect the anchors' noise (the replicated study with its
coverage is ``./dev bench --only health``)."""

from __future__ import annotations

import numpy as np
import pytest
from irtcat.irt.health.linking import METHODS, LinkItem, constants, link


def anchors(k: int = 12, seed: int = 0) -> list[LinkItem]:
    rng = np.random.default_rng(seed)
    slopes, difficulties = rng.uniform(0.8, 2.0, k), rng.normal(0, 1, k)
    items = [LinkItem(float(a), (float(b),)) for a, b in zip(slopes, difficulties, strict=True)]
    items.append(LinkItem(1.1, (-1.0, 0.2, 1.1), model="GPCM"))
    items.append(LinkItem(1.4, (-0.6, 0.5), model="GRM"))
    return items


def on_new_scale(items: list[LinkItem], big_a: float, big_b: float) -> list[LinkItem]:
    """The same items as a calibration on a scale with theta_old = A theta_new + B would give them."""
    return [LinkItem(it.a * big_a, tuple((x - big_b) / big_a for x in it.b), it.c, it.d, it.model) for it in items]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_recovers_a_known_rescaling(method: str) -> None:
    old = anchors()
    big_a, big_b = constants(old, on_new_scale(old, 0.8, 0.35), method)  # type: ignore[arg-type]
    assert big_a == pytest.approx(0.8, abs=1e-4) and big_b == pytest.approx(0.35, abs=1e-4)


def test_noisy_anchors_give_close_constants_with_honest_ses() -> None:
    old = anchors(k=20, seed=1)
    rng = np.random.default_rng(2)
    new = [LinkItem(it.a * np.exp(rng.normal(0, 0.05)), tuple(x + rng.normal(0, 0.05) for x in it.b), it.c, it.d,
                    it.model) for it in on_new_scale(old, 1.2, -0.3)]
    result = link(old, new, "stocking-lord", replications=100)
    assert abs(result.A - 1.2) < 0.05 and abs(result.B + 0.3) < 0.05
    assert 0.003 < result.se_A < 0.05 and 0.003 < result.se_B < 0.05
    exact = link(old, on_new_scale(old, 1.2, -0.3), "stocking-lord", replications=50)
    assert exact.se_A < 1e-3 and exact.se_B < 1e-3  # no noise, nothing for the bootstrap to find


def test_too_few_common_items_are_refused() -> None:
    old = anchors(k=3)[:4]
    with pytest.raises(ValueError, match="at least 5"):
        link(old, old)
