"""The managed calibration job's drift check of operational items (docs/health.md, Drift).

The job holds operational items fixed, and rightly: their parameters define the scale. But
its final E-step already has what a drift check needs: each item's expected answers per node
under the bank's posterior (n_iq, r_iq). One M-step of an item alone on those counts (a and b
free, c kept) is the estimate its answers alone would give on the bank's scale (the
fixed-parameter calibration of Kim 2006 for one item); :func:`irtcat.irt.health.drift.drift`
then links and compares them with the bank's values by robust z.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize

from ..irt.calibration.data import ExpectedCounts
from ..irt.health.drift import drift
from ..irt.health.linking import LinkItem
from ..irt.model import FloatArray
from .bank import ItemBank
from .health import link_items


def _one_item(n: FloatArray, r: FloatArray, nodes: FloatArray, a: float, b: float, c: float) -> tuple[float, float]:
    def negll(v: np.ndarray) -> float:
        p = np.clip(c + (1 - c) / (1 + np.exp(-np.exp(v[0]) * (nodes - v[1]))), 1e-10, 1 - 1e-10)
        return -float(np.sum(r * np.log(p) + (n - r) * np.log1p(-p)))

    res = minimize(negll, np.array([np.log(max(a, 0.05)), b]), method="L-BFGS-B",
                   bounds=[(np.log(0.05), np.log(6.0)), (-6.0, 6.0)])
    return float(np.exp(res.x[0])), float(res.x[1])


def operational_drift(base: ItemBank, counts: ExpectedCounts, nodes: FloatArray, min_responses: int
                      ) -> dict[str, Any]:
    """The drift check's report: the items checked, the link constants, and per drifting item
    its b difference, robust z and area (an empty check when fewer than 5 items qualify)."""
    per_item = counts.n.sum(axis=1)
    checked = [j for j, it in enumerate(base.items) if it.status == "operational" and it.model is None
               and j < per_item.size and per_item[j] >= min_responses]
    if len(checked) < 5:
        return {"checked": len(checked), "drifting": [], "note": "fewer than 5 operational items with "
                                                                 f"{min_responses} responses: not checked"}
    ids = [base.items[j].item_id for j in checked]
    bank_items = link_items(base, ids)
    fresh = []
    for j, it in zip(checked, bank_items, strict=True):
        a, b = _one_item(counts.n[j], counts.r[j], nodes, it.a, it.b[0], it.c)
        fresh.append(LinkItem(a, (b,), it.c))
    result = drift(bank_items, fresh)
    return {"checked": len(checked), "A": result.A, "B": result.B,
            "drifting": [{"item_id": ids[k], "d_b": round(float(result.d_b[k]), 4), "z": round(float(result.z[k]), 3),
                          "area": round(float(result.area[k]), 4)} for k in np.flatnonzero(result.flagged)]}
