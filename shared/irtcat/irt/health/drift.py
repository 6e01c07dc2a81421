"""Item parameter drift: operational items re-estimated with free parameters, linked back to the
bank's scale, and compared item by item.

1. Link the fresh estimates to the bank's scale by Stocking-Lord over the items (:mod:`.linking`).
2. d_i = b_i(fresh, linked) - b_i(bank) (a partial-credit item: the mean of its thresholds,
   its location) and the robust z of Huynh & Meyer (2010, *Applied
   Measurement in Education* 23, 112-125):

       z_i = (d_i - median(d)) / (0.74 IQR(d))

   (0.74 IQR estimates the SD of a normal sample, so one drifting item moves neither the centre
   nor the spread). An item is flagged when |z_i| > ``cutoff`` (default 2.576, two-sided .01)
   and its shift |d_i - median(d)| is at least ``min_shift`` (default 0.2 logits): z says the
   shift is unusual among the bank's items, the floor that it is large enough to matter (with
   40 items the IQR is itself noisy, and a narrow one would flag shifts nobody would act on).
3. Flagged items leave the anchor set and the link is made again (``rounds`` times), so that the
   drifting items do not pull the scale with them.

Beside z, the **area** between the two expected-score curves (as a share of the top score:
P(right) for a right/wrong item) over the N(0, 1) population of the bank's scale,
sqrt(integral (E_bank(theta) - E_fresh(theta))^2 phi(theta) dtheta), says how much a and b
moved together (a weighted form of Raju's 1988 area).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .linking import LinkItem, category_curves, constants

CUTOFF = 2.576
MIN_SHIFT = 0.2


@dataclass(frozen=True)
class Drift:
    """The link (A, B) from the items judged stable, and per item: b difference, robust z,
    area, flagged."""

    A: float
    B: float
    d_b: np.ndarray
    z: np.ndarray
    area: np.ndarray
    flagged: np.ndarray


def robust_z(d: np.ndarray) -> np.ndarray:
    """(d - median) / (0.74 IQR) (Huynh & Meyer 2010)."""
    q1, q3 = np.percentile(d, [25, 75])
    spread = 0.74 * (q3 - q1)
    out: np.ndarray = (d - np.median(d)) / spread if spread > 0 else np.zeros_like(d)
    return out


def drift(bank: Sequence[LinkItem], fresh: Sequence[LinkItem], cutoff: float = CUTOFF, min_shift: float = MIN_SHIFT,
          rounds: int = 3) -> Drift:
    """Compare ``fresh`` estimates with the ``bank``'s parameters of the same items, right/wrong
    or partial credit (module docstring)."""
    if len(bank) != len(fresh) or len(bank) < 5:
        raise ValueError("drift needs the same items in both, at least 5")
    stable = np.ones(len(bank), bool)
    theta = np.linspace(-4.0, 4.0, 81)
    weight = np.exp(-0.5 * theta**2)
    weight /= weight.sum()
    big_a = big_b = 0.0
    d = z = np.zeros(len(bank))
    flagged = np.zeros(len(bank), bool)
    for _ in range(rounds):
        keep = np.flatnonzero(stable).tolist()
        big_a, big_b = constants([bank[i] for i in keep], [fresh[i] for i in keep], "stocking-lord")
        linked = [it.on_old_scale(big_a, big_b) for it in fresh]
        d = np.array([np.mean(new.b) - np.mean(old.b) for new, old in zip(linked, bank, strict=True)])
        z = robust_z(d)
        flagged = (np.abs(z) > cutoff) & (np.abs(d - np.median(d)) >= min_shift)
        if np.array_equal(~flagged, stable) or (~flagged).sum() < 5:
            break
        stable = ~flagged
    linked = [it.on_old_scale(big_a, big_b) for it in fresh]
    old_curves, new_curves = category_curves(bank, theta), category_curves(linked, theta)
    # category_curves lists right/wrong items first: put the curves back in the items' order
    order = [i for i, it in enumerate(bank) if it.model is None] + [i for i, it in enumerate(bank) if it.model]
    area = np.empty(len(bank))
    for i, o, n in zip(order, old_curves, new_curves, strict=True):
        score = np.arange(o.shape[1]) / (o.shape[1] - 1)
        area[i] = np.sqrt(np.sum(weight * (o @ score - n @ score) ** 2))
    return Drift(big_a, big_b, d, z, area, flagged)
