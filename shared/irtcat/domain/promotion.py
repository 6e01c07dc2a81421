"""When a pretest item becomes operational: the promotion gates, stated once.

Every way of calibrating (``irtcat calibrate``, the managed calibration job, ``irtcat local
calibrate``) applies these gates; their production defaults are :data:`GATES`, chosen to be
conservative: SE(b) <= 0.3 keeps an item's difficulty error under a third of the ability
SD, 500 responses is a common minimum pretest sample for 3PL items, and RMSD <= 0.1 flags
items whose observed proportions miss the curve by ten points (the RMSD of von Davier 2017).
A run that did not converge promotes nothing. The local demo, which has few answers, passes
its smaller values explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..irt.model import FloatArray

if TYPE_CHECKING:  # the command line reads the gates without loading the calibration engine
    from ..irt.calibration import CalibrationResult


@dataclass(frozen=True)
class PromotionGates:
    """SE(b) at most ``max_se_b``, at least ``min_responses`` responses, RMSD at most ``max_rmsd``."""

    max_se_b: float = 0.3
    min_responses: int = 500
    max_rmsd: float = 0.1


GATES = PromotionGates()


def promote(result: CalibrationResult, pretest: np.ndarray, max_se_b: float = GATES.max_se_b,
            min_responses: int = GATES.min_responses, max_rmsd: float = GATES.max_rmsd) -> dict[int, str]:
    """Which pretest items become operational, and why each other one does not: an estimated
    pretest item is promoted when SE(b) <= ``max_se_b``, it has at least ``min_responses``
    responses, its RMSD is at most ``max_rmsd`` and the run converged. Returns item index ->
    "promoted" or the reason it stays a pretest item."""
    return promotion_decisions(pretest, result.n_responses, result.se_b, result.rmsd, result.converged,
                               result.left_out, max_se_b, min_responses, max_rmsd)


def promotion_decisions(pretest: np.ndarray, n_responses: np.ndarray, se_b: FloatArray, rmsd: FloatArray,
                        converged: bool, left_out: dict[int, str], max_se_b: float, min_responses: int,
                        max_rmsd: float, se_label: str = "SE(b)") -> dict[int, str]:
    """The gates of :func:`promote` on plain arrays (a partial-credit item's ``se_b`` is the
    largest SE of its thresholds, ``se_label`` naming it)."""
    decisions: dict[int, str] = {}
    for i in map(int, np.flatnonzero(pretest)):
        if i in left_out:
            decisions[i] = left_out[i]
        elif not converged:
            decisions[i] = "calibration did not converge"
        elif n_responses[i] < min_responses:
            decisions[i] = f"n_responses {n_responses[i]} < {min_responses}"
        elif not se_b[i] <= max_se_b:
            decisions[i] = f"{se_label} {se_b[i]:.3f} > {max_se_b}"
        elif rmsd[i] > max_rmsd:
            decisions[i] = f"RMSD {rmsd[i]:.3f} > {max_rmsd}"
        else:
            decisions[i] = "promoted"
    return decisions
