"""The managed calibration job's drift check of operational items (docs/health.md, Drift).

The job holds operational items fixed, and rightly: their parameters define the scale. But
its final E-step already has what a drift check needs: each item's expected answers per node
under the bank's posterior (n_iq, r_iq). One M-step of an item alone on those counts (a and b
free, c kept) is the estimate its answers alone would give on the bank's scale (the
fixed-parameter calibration of Kim 2006 for one item); :func:`irtcat.irt.health.drift.drift`
then links and compares them with the bank's values by robust z. A partial-credit item is
re-estimated the same way from its expected category counts (a and its thresholds free; a
graded item's thresholds kept in order) and compared by its location, the mean threshold.
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


def _one_partial_item(counts: FloatArray, nodes: FloatArray, model: str, a: float, b: tuple[float, ...]
                      ) -> tuple[float, tuple[float, ...]]:
    """a and thresholds (D = 1) maximising sum_k sum_q r_kq ln P_k(theta_q) for one GRM or
    GPCM item; a graded item's thresholds as the first and positive steps, so they stay in order."""
    from ..irt.polytomous import PolytomousItems, category_probabilities

    m = len(b)
    graded = model == "GRM"

    def unpack(v: np.ndarray) -> tuple[float, list[float]]:
        if graded:
            return float(np.exp(v[0])), list(v[1] + np.concatenate([[0.0], np.cumsum(np.exp(v[2:]))]))
        return float(np.exp(v[0])), list(v[1:])

    def negll(v: np.ndarray) -> float:
        slope, thresholds = unpack(v)
        item = PolytomousItems.build([model], [slope], [thresholds], scale=1.0)
        p = category_probabilities(nodes, item)[:, 0, : m + 1]
        return -float(np.sum(counts[: m + 1] * np.log(np.clip(p.T, 1e-12, 1.0))))

    steps = list(np.log(np.maximum(np.diff(b), 0.05))) if graded else list(b[1:])
    start = np.array([np.log(max(a, 0.05)), b[0], *steps])
    res = minimize(negll, start, method="L-BFGS-B",
                   bounds=[(np.log(0.05), np.log(6.0)), *[(-6.0, 6.0)] * m] if not graded else
                   [(np.log(0.05), np.log(6.0)), (-6.0, 6.0), *[(-5.0, 2.0)] * (m - 1)])
    slope, thresholds = unpack(res.x)
    return slope, tuple(float(t) for t in thresholds)


def operational_drift(base: ItemBank, counts: ExpectedCounts, nodes: FloatArray, min_responses: int,
                      partial_index: np.ndarray | None = None) -> dict[str, Any]:
    """The drift check's report: the items checked, the link constants, and per drifting item
    its b difference (a partial-credit item: its mean threshold's), robust z and area (an empty
    check when fewer than 5 items qualify). ``partial_index``: the bank positions of the run's
    partial-credit items, in the order of ``counts.fixed_categories``."""
    per_item = counts.n.sum(axis=1)
    checked = [j for j, it in enumerate(base.items) if it.status == "operational" and it.model is None
               and j < per_item.size and per_item[j] >= min_responses]
    partial: list[tuple[int, FloatArray]] = []
    if partial_index is not None and counts.fixed_categories is not None and len(partial_index):
        cats = counts.fixed_categories.reshape(len(partial_index), -1, nodes.size)
        partial = [(int(j), cats[k]) for k, j in enumerate(partial_index)
                   if base.items[int(j)].status == "operational" and cats[k].sum() >= min_responses]
    if len(checked) + len(partial) < 5:
        return {"checked": len(checked) + len(partial), "drifting": [],
                "note": f"fewer than 5 operational items with {min_responses} responses: not checked"}
    ids = [base.items[j].item_id for j in checked] + [base.items[j].item_id for j, _ in partial]
    bank_items = link_items(base, ids)
    fresh = []
    for j, it in zip(checked, bank_items[: len(checked)], strict=True):
        a, b = _one_item(counts.n[j], counts.r[j], nodes, it.a, it.b[0], it.c)
        fresh.append(LinkItem(a, (b,), it.c))
    for (_, cat), it in zip(partial, bank_items[len(checked):], strict=True):
        slope, thresholds = _one_partial_item(cat, nodes, str(it.model), it.a, it.b)
        fresh.append(LinkItem(slope, thresholds, model=it.model))
    result = drift(bank_items, fresh)
    return {"checked": len(ids), "A": result.A, "B": result.B,
            "drifting": [{"item_id": ids[k], "d_b": round(float(result.d_b[k]), 4), "z": round(float(result.z[k]), 3),
                          "area": round(float(result.area[k]), 4)} for k in np.flatnonzero(result.flagged)]}
