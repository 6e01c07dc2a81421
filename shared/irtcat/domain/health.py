"""A bank and its response data in the shapes the health statistics take
(:mod:`irtcat.irt.health`): the items' curves, a person x item response matrix, group
membership, and a bank re-expressed on another bank's scale."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from ..irt.health.common import MISSING, Adjust, ItemCurves, partial_credit_curves, right_wrong_curves
from ..irt.health.linking import LinkItem
from ..irt.model import FloatArray
from .bank import Item, ItemBank

RIGHT_WRONG_PARAMS = {"1PL": 1, "Rasch": 1, "2PL": 2, "3PL": 3, "4PL": 4}


def estimated_parameters(bank: ItemBank, item: Item) -> int:
    """How many parameters calibration estimates for ``item`` (the df an item fit statistic
    loses): a slope and one threshold per category step for a partial-credit item, by the
    bank's model for a right/wrong one."""
    if item.model is not None:
        return 1 + len(item.thresholds)
    return RIGHT_WRONG_PARAMS.get(bank.model, 3)


def bank_curves(bank: ItemBank, positions: list[int], theta: FloatArray) -> ItemCurves:
    """The category probabilities of the bank's items at ``positions`` on ``theta``."""
    engine = bank.engine
    rw = right_wrong_curves(engine.params, theta)
    poly: list[FloatArray] = []
    if engine.poly is not None:
        poly = partial_credit_curves(engine.poly, theta)
    where = {int(j): k for k, j in enumerate(engine.poly_index)} if engine.poly is not None else {}
    probs = tuple(poly[where[j]] if j in where else rw[j] for j in positions)
    return ItemCurves(probs, np.array([estimated_parameters(bank, bank.items[j]) for j in positions]))


def response_matrix(students: list[str], items: list[str], responses: np.ndarray, bank: ItemBank
                    ) -> tuple[list[str], list[int], np.ndarray]:
    """(students in order, bank positions of the items answered, persons x items matrix with
    MISSING where an item was not answered); ValueError naming items the bank lacks."""
    index = bank.engine.index
    unknown = sorted({i for i in items if i not in index})
    if unknown:
        raise ValueError(f"{len(unknown)} item id(s) not in the bank: {', '.join(unknown[:5])}")
    people = {s: k for k, s in enumerate(dict.fromkeys(students))}
    positions = sorted({index[i] for i in items})
    column = {j: k for k, j in enumerate(positions)}
    out = np.full((len(people), len(positions)), MISSING, dtype=np.int64)
    out[[people[s] for s in students], [column[index[i]] for i in items]] = responses
    return list(people), positions, out


def read_groups(path: Path, variable: str) -> dict[str, str]:
    """``student_id,<variable>,...`` rows: each student's value of ``variable`` (blank: none)."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        if "student_id" not in fields or variable not in fields:
            raise ValueError(f"{path}: needs the columns student_id and {variable} (has {', '.join(fields)})")
        return {row["student_id"]: row[variable].strip() for row in reader if row[variable] and row[variable].strip()}


def focal_and_reference(values: dict[str, str], focal: str, reference: str | None) -> tuple[str, str]:
    """The focal value (checked) and the reference value: the one named, else the most common other."""
    counts: dict[str, int] = {}
    for v in values.values():
        counts[v] = counts.get(v, 0) + 1
    if focal not in counts:
        raise ValueError(f"no student has the focal value {focal!r} (values: {', '.join(sorted(counts))})")
    others = {v: n for v, n in counts.items() if v != focal}
    if reference is None:
        if not others:
            raise ValueError("every student is in the focal group: there is no reference group")
        reference = max(sorted(others), key=lambda v: others[v])
    elif reference not in others:
        raise ValueError(f"no student has the reference value {reference!r}")
    return focal, reference


def dif_study(bank: ItemBank, people: list[str], positions: list[int], matrix: np.ndarray,
              values: dict[str, str], focal_value: str, reference_value: str, strata: int = 20,
              adjust: Adjust = "bh", alpha: float = 0.05, likelihood_ratio: bool = True,
              curve_bands: int = 6) -> dict[str, Any]:
    """DIF of the items of ``matrix`` (people x ``positions``) between the people whose
    ``values`` are ``focal_value`` and ``reference_value``. Right/wrong items:
    :func:`irtcat.irt.health.dif.dif` (Mantel-Haenszel with ETS classes and the IRT
    likelihood-ratio test); on adaptive data (any item missing for someone) matched on each
    examinee's EAP without the studied item, in ``strata`` equal-count ability strata
    (CATSIB-style). Partial-credit items: Mantel's ordinal test with the SMD and ETS's
    polytomous classes (:func:`irtcat.irt.health.dif.mantel_ordinal`), always on those ability
    strata. Each item also gets its DIF curves: each group's mean score (as a share of the top
    category) by band of that ability (``curve_bands`` equal-count bands), beside the bank's."""
    from ..irt.health.common import log_likelihoods, normal_grid
    from ..irt.health.dif import ability_strata, dif, mantel_ordinal

    keep = np.array([values.get(s) in (focal_value, reference_value) for s in people])
    x = matrix[keep]
    focal = np.array([values[s] == focal_value for s, k in zip(people, keep, strict=True) if k])
    grid, w = normal_grid()
    curves = bank_curves(bank, positions, grid)
    total = log_likelihoods(x, curves)
    # each examinee's EAP without the studied item: the matching ability (and the curves' axis)
    theta = np.empty(x.shape, float)
    for i in range(len(positions)):
        own = log_likelihoods(x[:, [i]], curves.subset([i]))
        lp = total - own + np.log(w)[None, :]
        lp = np.exp(lp - lp.max(axis=1, keepdims=True))
        theta[:, i] = (lp @ grid) / lp.sum(axis=1)
    adaptive = bool((x == MISSING).any())
    rw = [k for k, j in enumerate(positions) if bank.items[j].model is None]
    rows: dict[int, dict[str, Any]] = {}
    if rw:
        params = bank.engine.params
        cols = [positions[k] for k in rw]
        results = dif(x[:, rw], focal, params.a[cols] * params.scale, params.b[cols], params.c[cols],
                      theta=theta[:, rw] if adaptive else None, strata=strata, adjust=adjust, alpha=alpha,
                      likelihood_ratio=likelihood_ratio)
        for k, r in zip(rw, results, strict=True):
            rows[k] = {"mh_delta": _finite(r.mh.delta), "mh_chi2": _finite(r.mh.chi2), "mh_p": _finite(r.mh.p),
                       "ets_class": r.mh.ets_class or None, "lr_chi2": _finite(r.lr_chi2), "lr_df": r.lr_df or None,
                       "lr_p": _finite(r.lr_p), "lr_uniform_p": _finite(r.lr_uniform_p),
                       "lr_nonuniform_p": _finite(r.lr_nonuniform_p), "flagged": r.flagged}
    for k in (k for k in range(len(positions)) if k not in rows):  # partial credit
        seen = x[:, k] != MISSING
        m = mantel_ordinal(x[seen, k], focal[seen], ability_strata(theta[seen, k], strata))
        rows[k] = {"mh_delta": None, "smd": _finite(m.smd), "effect_size": _finite(m.effect_size),
                   "mantel_chi2": _finite(m.chi2), "mantel_p": _finite(m.p), "ets_class": m.ets_class or None,
                   "flagged": m.ets_class in ("B", "C")}
    if not rows:
        raise ValueError("no item in the responses")
    items = [{"item_id": bank.items[j].item_id, **rows[k], "curve": _dif_curve(bank, j, x[:, k], theta[:, k], focal,
                                                                              curves.probs[k].shape[1] - 1,
                                                                              curve_bands)}
             for k, j in enumerate(positions)]
    return {"focal": focal_value, "reference": reference_value, "focal_n": int(focal.sum()),
            "reference_n": int((~focal).sum()),
            "matching": "ability strata" if adaptive else "purified summed score", "items": items}


def _dif_curve(bank: ItemBank, j: int, score: np.ndarray, theta: FloatArray, focal: np.ndarray, top: int,
               bands: int) -> dict[str, list[float | None]]:
    """Each group's mean score / ``top`` by equal-count band of ``theta``, and the bank's."""
    seen = score != MISSING
    band = np.zeros(score.size, int)
    if seen.sum() >= bands:
        band = np.searchsorted(np.quantile(theta[seen], np.linspace(0, 1, bands + 1)[1:-1]), theta)
    curve: dict[str, list[float | None]] = {"theta": [], "focal": [], "reference": [], "model": []}
    for k in range(bands):
        here = seen & (band == k)
        if not here.any():
            continue
        mid = float(theta[here].mean())
        curve["theta"].append(round(mid, 3))
        for name, members in (("focal", focal), ("reference", ~focal)):
            group = here & members
            curve[name].append(round(float(score[group].mean()) / top, 4) if group.sum() >= 3 else None)
        probs = bank_curves(bank, [j], np.array([mid])).probs[0][0]
        curve["model"].append(round(float(probs @ np.arange(probs.size)) / top, 4))
    return curve


def _finite(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


def link_items(bank: ItemBank, ids: list[str]) -> list[LinkItem]:
    """The items ``ids`` of ``bank`` on the D = 1 metric, for linking."""
    out = []
    for item_id in ids:
        it = bank.items[bank.engine.index[item_id]]
        b = tuple(it.thresholds) if it.model is not None else (it.difficulty,)
        out.append(LinkItem(it.a * bank.scale, b, it.c, it.d, it.model))
    return out


def rescaled(bank: ItemBank, big_a: float, big_b: float) -> ItemBank:
    """``bank`` with every item on the other scale: a / A, b (and thresholds) A b + B, their SEs
    alike; c, d unchanged (theta_old = A theta_new + B)."""
    items = []
    for it in bank.items:
        b = [big_a * x + big_b for x in it.b] if isinstance(it.b, list) else big_a * it.b + big_b
        se_b = ([big_a * x for x in it.se_b] if isinstance(it.se_b, list)
                else None if it.se_b is None else big_a * it.se_b)
        items.append(it.model_copy(update={"a": it.a / big_a, "b": b, "se_b": se_b,
                                           "se_a": None if it.se_a is None else it.se_a / big_a}))
    return bank.model_copy(update={"items": items})


def bank_reliability(base: ItemBank, new: ItemBank, length: int) -> dict[str, Any]:
    """The marginal reliability the bank's operational items can give a test of ``length``
    (the run's median session length) against the N(0, 1) prior, before and after this run
    (:func:`irtcat.irt.health.reliability.information_reliability` of the ``length`` most
    informative items at each theta); per test from its sessions on the health page."""
    from ..irt.health.common import normal_grid
    from ..irt.health.reliability import best_test_information, information_reliability

    grid, _ = normal_grid(121, 6.0)
    out: dict[str, Any] = {"median_length": length}
    for name, b in (("base_bound", base), ("candidate_bound", new)):
        info = b.engine.information(grid)[:, b.engine.operational]
        out[name] = (round(information_reliability(best_test_information(info, length), grid), 4)
                     if length and info.shape[1] else None)
    return out
