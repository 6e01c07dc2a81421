"""Exposure control for a bank: Sympson-Hetter parameters computed for a test policy.

The default policy serves an item only after it wins a lottery with probability ``exposure_k``
(Sympson & Hetter 1985), which keeps every item's exposure rate at or below the policy's
``max_exposure``. The parameters depend on the bank and the policy, so they are computed by
simulation when a bank is made (``irtcat bank generate``, the demo) or on demand
(``irtcat exposure``), and travel with the bank.
"""

from __future__ import annotations

import numpy as np

from ..irt.simulation import sympson_hetter_parameters
from .bank import ItemBank
from .policy import TestPolicy

# The iteration aims this far below the policy's maximum: a simulated rate has a sampling
# error (about 0.008 at 0.25 over 3,000 examinees), the largest of 500 noisy rates sits a
# couple of errors above the true largest, and the lottery's fixed point lags its target;
# at 0.88 the largest rate measured on fresh examinees stayed under the maximum.
TARGET_MARGIN = 0.88


def with_exposure_control(bank: ItemBank, policy: TestPolicy | None = None, examinees: int = 3000,
                          rounds: int = 12, seed: int = 0, margin: float = TARGET_MARGIN
                          ) -> tuple[ItemBank, list[float]]:
    """``bank`` with ``exposure_k`` set so that, under ``policy`` (default: the default policy),
    no item's exposure rate exceeds ``policy.max_exposure`` (the iteration aims at ``margin``
    times it); and the largest exposure rate of each simulated round."""
    policy = policy or TestPolicy()
    k, history = sympson_hetter_parameters(bank.engine, policy.cat_config(), policy.max_exposure * margin,
                                           examinees, rounds, seed)
    items = [it.model_copy(update={"exposure_k": float(max(min(kk, 1.0), 1e-6))})
             for it, kk in zip(bank.items, np.asarray(k), strict=True)]
    return bank.model_copy(update={"items": items}), history
