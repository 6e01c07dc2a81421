"""A calibration result as a new item-bank version, with a per-item report."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..irt.calibration import CalibrationResult, promote
from ..irt.polytomous_calibration import PolytomousResult
from .bank import CalibrationInfo, Item, ItemBank


def calibrated_bank(result: CalibrationResult, item_ids: list[str], base: ItemBank | None, bank_id: str,
                    version: int, pretest: np.ndarray, promote_se: float, promote_n: int,
                    promote_rmsd: float) -> tuple[ItemBank, dict[str, Any]]:
    """The new bank version and a per-item report (estimates, SEs, n, fit, promotion)."""
    decisions = promote(result, pretest, promote_se, promote_n, promote_rmsd)
    old = {it.item_id: it for it in base.items} if base else {}
    items, report = [], []
    counts: Counter[str] = Counter()
    for j, item_id in enumerate(item_ids):
        prev = old.get(item_id)
        if prev is not None and prev.model is not None:  # partial-credit: calibrated on its own, carried over
            items.append(prev)
            counts[prev.status] += 1
            report.append({"item_id": item_id, "estimated": False, "model": prev.model})
            continue
        estimated = bool(result.estimated[j])
        status = prev.status if prev else "operational"
        note = None
        if j in decisions:
            note = decisions[j]
            status = "operational" if note == "promoted" else "pretest"
        elif not estimated and not prev:
            status, note = "pretest", result.left_out.get(j, "not estimated")
        counts[status] += 1

        def num(x: float) -> float | None:
            return round(float(x), 5) if np.isfinite(x) else None

        fields = dict(
            a=round(float(result.a[j]), 5), b=round(float(result.b[j]), 5), c=round(float(result.c[j]), 5),
            status=status, se_a=num(result.se_a[j]) if result.model != "1PL" else None,
            se_b=num(result.se_b[j]), se_c=num(result.se_c[j]) if result.model == "3PL" else None,
            n_responses=int(result.n_responses[j]), rmsd=num(result.rmsd[j]), calibration_note=note,
        )
        if prev is not None and not estimated:
            se_b = prev.se_b if not isinstance(prev.se_b, list) else None
            fields.update(a=prev.a, b=prev.difficulty, c=prev.c, se_a=prev.se_a, se_b=se_b, se_c=prev.se_c)
        item = prev.model_copy(update=fields) if prev else Item(item_id=item_id, **fields)  # type: ignore[arg-type]
        items.append(Item.model_validate(item.model_dump()))
        report.append({"item_id": item_id, "estimated": estimated, **fields})
    model = result.model if base is None else base.model
    info = CalibrationInfo(model=result.model, priors=result.priors.describe(), se_method=result.se_method,
                           cycles=result.iterations, converged=result.converged,
                           n_responses=int(result.n_responses.sum()), n_persons=result.n_persons,
                           log_likelihood=result.log_likelihood)
    bank = ItemBank(bank_id=bank_id, version=version, model=model, scale=base.scale if base else 1.0,
                    items=items, calibration=info)
    return bank, {"items": report, "status_counts": dict(counts),
                  "promoted": [item_ids[j] for j, d in decisions.items() if d == "promoted"]}


def partial_credit_bank(result: PolytomousResult, item_ids: list[str], bank_id: str, version: int,
                        n_persons: int) -> ItemBank:
    """A bank of the partial-credit items ``result`` estimated: each item carries its model,
    a, its thresholds b, their SEs, its responses and its fit."""

    def num(x: float) -> float | None:
        return round(float(x), 5) if np.isfinite(x) else None

    items = []
    for j, item_id in enumerate(item_ids):
        m = int(np.sum(~np.isnan(result.thresholds[j])))
        se_b = [num(x) for x in result.se_thresholds[j, :m]]
        items.append(Item(
            item_id=item_id, model=result.models[j],  # type: ignore[arg-type]
            a=round(float(result.a[j]), 5), b=[round(float(x), 5) for x in result.thresholds[j, :m]],
            se_a=num(result.se_a[j]), se_b=None if None in se_b else [float(x) for x in se_b if x is not None],
            n_responses=int(result.n_responses[j]), rmsd=num(result.rmsd[j]),
            calibration_note=None if result.converged else "EM did not converge"))
    info = CalibrationInfo(model=result.model, priors=result.priors.describe(), se_method=result.se_method,
                           cycles=result.cycles, converged=result.converged,
                           n_responses=int(result.n_responses.sum()), n_persons=n_persons,
                           log_likelihood=result.log_likelihood)
    single = result.model if result.model in ("GRM", "GPCM") else "3PL"  # a mixed run names no one model
    return ItemBank(bank_id=bank_id, version=version, model=single,  # type: ignore[arg-type]
                    items=items, calibration=info, scale=1.0)
