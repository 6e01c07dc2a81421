"""A calibration result as a new item-bank version, with a per-item report."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..irt.calibration import CalibrationResult, MixedResult, PolytomousResult
from .bank import CalibrationInfo, Item, ItemBank
from .promotion import promote, promotion_decisions


def _num(x: float) -> float | None:
    return round(float(x), 5) if np.isfinite(x) else None


def _right_wrong_fields(result: CalibrationResult, j: int) -> dict[str, Any]:
    """Item j's estimates, SEs, responses and fit, as bank item fields."""
    return dict(
        a=round(float(result.a[j]), 5), b=round(float(result.b[j]), 5), c=round(float(result.c[j]), 5),
        se_a=_num(result.se_a[j]) if result.model != "1PL" else None,
        se_b=_num(result.se_b[j]), se_c=_num(result.se_c[j]) if result.model == "3PL" else None,
        n_responses=int(result.n_responses[j]), rmsd=_num(result.rmsd[j]))


def _partial_fields(result: PolytomousResult, j: int) -> dict[str, Any]:
    """Partial-credit item j's model, a, thresholds b and their SEs, responses and fit."""
    m = int(np.sum(~np.isnan(result.thresholds[j])))
    se_b = [_num(x) for x in result.se_thresholds[j, :m]]
    return dict(model=result.models[j], a=round(float(result.a[j]), 5),
                b=[round(float(x), 5) for x in result.thresholds[j, :m]], se_a=_num(result.se_a[j]),
                se_b=None if None in se_b else [float(x) for x in se_b if x is not None], se_c=None,
                n_responses=int(result.n_responses[j]), rmsd=_num(result.rmsd[j]),
                calibration_note=None if result.converged else "EM did not converge")


def partial_decisions(result: PolytomousResult, pretest: np.ndarray, max_se_b: float, min_responses: int,
                      max_rmsd: float) -> dict[int, str]:
    """The promotion gates (:func:`.promotion.promotion_decisions`) for partial-credit items,
    on the largest SE among each item's thresholds."""
    largest = np.array([np.nanmax(row) if np.isfinite(row).any() else np.nan for row in result.se_thresholds])
    return promotion_decisions(pretest, result.n_responses, largest, result.rmsd, result.converged, {},
                               max_se_b, min_responses, max_rmsd, se_label="largest SE of the thresholds")


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
        if prev is not None and prev.model is not None:  # partial-credit: not in a right/wrong run, carried over
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
        fields = {**_right_wrong_fields(result, j), "status": status, "calibration_note": note}
        if prev is not None and not estimated:
            se_b = prev.se_b if not isinstance(prev.se_b, list) else None
            fields.update(a=prev.a, b=prev.difficulty, c=prev.c, se_a=prev.se_a, se_b=se_b, se_c=prev.se_c)
        item = prev.model_copy(update=fields) if prev else Item(item_id=item_id, **fields)
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
    items = [Item.model_validate({"item_id": item_id, **_partial_fields(result, j)})
             for j, item_id in enumerate(item_ids)]
    info = CalibrationInfo(model=result.model, priors=result.priors.describe(), se_method=result.se_method,
                           cycles=result.cycles, converged=result.converged,
                           n_responses=int(result.n_responses.sum()), n_persons=n_persons,
                           log_likelihood=result.log_likelihood)
    single = result.model if result.model in ("GRM", "GPCM") else "3PL"  # a mixed run names no one model
    return ItemBank(bank_id=bank_id, version=version, model=single,  # type: ignore[arg-type]
                    items=items, calibration=info, scale=1.0)


def mixed_bank(base: ItemBank, result: MixedResult, right_wrong_ids: list[str], partial_ids: list[str],
               bank_id: str, version: int, n_persons: int, promote_se: float, promote_n: int,
               promote_rmsd: float) -> tuple[ItemBank, dict[str, Any]]:
    """``base`` with the estimates of a joint run (:func:`irtcat.irt.calibration.calibrate_mixed`):
    each estimated item keeps its content, scoring rule and exposure setting and takes its new
    parameters, SEs, responses and fit; an estimated pretest item passing the gates (SE,
    responses, RMSD; for a partial-credit item its largest threshold SE) becomes operational.
    Every other item is carried over unchanged. Returns the bank and a per-item report."""
    pretest = {it.item_id for it in base.items if it.status == "pretest"}
    updates: dict[str, dict[str, Any]] = {}
    promoted: list[str] = []
    if result.right_wrong is not None:
        rw = result.right_wrong
        decisions = promote(rw, np.array([i in pretest for i in right_wrong_ids]), promote_se, promote_n,
                            promote_rmsd)
        for j, item_id in enumerate(right_wrong_ids):
            fields = {"calibration_note": rw.left_out[j]} if j in rw.left_out else _right_wrong_fields(rw, j)
            updates[item_id] = {**fields, **_decided(decisions.get(j))}
            if decisions.get(j) == "promoted":
                promoted.append(item_id)
    bank = base.model_copy(update={"items": [
        it.model_copy(update=updates[it.item_id]) if it.item_id in updates else it for it in base.items]})
    rows = [{"item_id": i, "estimated": True, **fields} for i, fields in updates.items()]
    if result.partial is not None:
        bank, partial_rows, partial_promoted = with_partial_estimates(bank, result.partial, partial_ids, promote_se,
                                                                      promote_n, promote_rmsd)
        rows += partial_rows
        promoted += partial_promoted
    summary = result.summary()
    priors = {"right_wrong": result.right_wrong.priors.describe() if result.right_wrong else None,
              "partial_credit": result.partial.priors.describe() if result.partial else None}
    se_method = "; ".join(dict.fromkeys(r.se_method for r in (result.right_wrong, result.partial) if r is not None))
    info = CalibrationInfo(model=summary["model"], priors=priors, se_method=se_method,
                           cycles=result.cycles, converged=result.converged, n_responses=summary["n_responses"],
                           n_persons=n_persons, log_likelihood=result.log_likelihood)
    bank = bank.model_copy(update={"bank_id": bank_id, "version": version, "calibration": info})
    by_id = {row["item_id"]: row for row in rows}
    report = [by_id.get(it.item_id, {"item_id": it.item_id, "estimated": False}) for it in base.items]
    return ItemBank.model_validate(bank.model_dump()), {
        "items": report, "status_counts": dict(Counter(it.status for it in bank.items)), "promoted": promoted}


def _decided(decision: str | None) -> dict[str, Any]:
    """The status and note a promotion decision gives (nothing when there was none)."""
    if decision is None:
        return {}
    return {"calibration_note": decision, "status": "operational" if decision == "promoted" else "pretest"}


def with_partial_estimates(bank: ItemBank, result: PolytomousResult, item_ids: list[str], promote_se: float,
                           promote_n: int, promote_rmsd: float
                           ) -> tuple[ItemBank, list[dict[str, Any]], list[str]]:
    """``bank`` with the partial-credit estimates of ``result`` (item j is ``item_ids[j]``):
    each item keeps its content, scoring rule and exposure setting and takes its new a,
    thresholds, SEs, responses and fit; a pretest one passing the gates (:func:`partial_decisions`)
    becomes operational. Returns the bank, the report rows and the promoted ids."""
    status = {it.item_id: it.status for it in bank.items}
    decisions = partial_decisions(result, np.array([status[i] == "pretest" for i in item_ids]), promote_se,
                                  promote_n, promote_rmsd)
    updates = {item_id: {**_partial_fields(result, j), **_decided(decisions.get(j))}
               for j, item_id in enumerate(item_ids)}
    items = [Item.model_validate(it.model_copy(update=updates[it.item_id]).model_dump())
             if it.item_id in updates else it for it in bank.items]
    rows = [{"item_id": i, "estimated": True, **fields} for i, fields in updates.items()]
    promoted = [item_ids[j] for j, d in decisions.items() if d == "promoted"]
    return bank.model_copy(update={"items": items}), rows, promoted
