"""Benchmarks of blueprints: the shadow test's solve time per selection, and what holding every
test to a blueprint costs in precision, beside unconstrained max-info and Kingsbury-Zara content
balancing on the same content rules.

The bank: ``items`` 3PL items in five content areas, every fifth numeric entry, a depth of
knowledge 1-3 and one of nine skills each, expected seconds U(40, 110), 25 passages of six items;
40 enemy sets of two or three items. The blueprint (30 items, 20 rules): each area 5-7 items
(algebra 6-8), at least 4 numeric and 20 choice items, depth 1 at most 12, depth 2 at least 8,
depth 3 at least 4, each skill at most 6 items, at most 2,400 expected seconds; the enemies;
passages of 3-5 items, at most 2 per test.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

AREAS = ("algebra", "geometry", "number", "data", "measure")


def blueprint_bank(items: int, seed: int = 11) -> tuple[Any, Any]:
    """The benchmark's bank and its blueprint (module docstring)."""
    from irtcat.domain.bank import ItemBank
    from irtcat.domain.blueprint import Blueprint
    from irtcat.domain.generate import generate_bank

    rng = np.random.default_rng(seed)
    bank = generate_bank(items, "3PL", seed=seed, bank_id=f"blueprint-{items}", content_areas=list(AREAS))
    passage_items = rng.permutation(items)[:150]
    passage = {int(j): f"p{k // 6:02d}" for k, j in enumerate(passage_items)}
    rows = []
    for k, it in enumerate(bank.items):
        attrs = {"dok": str(rng.integers(1, 4)), "skill": f"s{rng.integers(0, 9)}"}
        if k in passage:
            attrs["passage"] = passage[k]
        rows.append(it.model_copy(update={"attributes": attrs,
                                          "expected_seconds": float(rng.uniform(40, 110))}).model_dump())
    bank = ItemBank.model_validate({**bank.model_dump(), "items": rows})
    ids = [it.item_id for it in bank.items]
    enemies = [[ids[j] for j in rng.choice(items, size=int(rng.integers(2, 4)), replace=False)] for _ in range(40)]
    constraints: list[dict[str, Any]] = [
        {"attribute": "content_area", "value": a, "min": 6 if a == "algebra" else 5, "max": 8 if a == "algebra" else 7}
        for a in AREAS]
    constraints += [{"attribute": "item_type", "value": "numeric", "min": 4},
                    {"attribute": "item_type", "value": "choice", "min": 20},
                    {"attribute": "dok", "value": "1", "max": 12}, {"attribute": "dok", "value": "2", "min": 8},
                    {"attribute": "dok", "value": "3", "min": 4}]
    constraints += [{"attribute": "skill", "value": f"s{k}", "max": 6} for k in range(9)]
    constraints.append({"sum": "expected_seconds", "max": 2400})
    blueprint = Blueprint.model_validate({
        "length": 30, "constraints": constraints, "enemies": enemies,
        "sets": {"attribute": "passage", "items_min": 3, "items_max": 5, "max_sets": 2}})
    return bank, blueprint


def _policy(blueprint: Any, **over: Any) -> Any:
    from irtcat.domain.policy import StoppingPolicy, TestPolicy

    fixed = StoppingPolicy(se_threshold=None, min_items=30, max_items=30)
    if blueprint is None:
        return TestPolicy(stopping=fixed, **over)
    return TestPolicy(selection="shadow", blueprint=blueprint, stopping=fixed, **over)


def bench_shadow_solve(examinees: int = 20) -> dict[str, Any]:
    """One shadow-test selection (the solve and the pick), median and p99 milliseconds, over the
    selections of ``examinees`` simulees of a 30-item test, on banks of 500, 1,000 and 5,000
    items with the 20-rule blueprint, 40 enemy sets and 25 passages; and how often the candidate
    problem had to fall back to every item."""
    from irtcat.irt import selection
    from irtcat.irt.simulation import simulate

    out: dict[str, Any] = {}
    assemble = selection.assemble
    for items in (500, 1000, 5000):
        bank, blueprint = blueprint_bank(items)
        config = _policy(blueprint, sympson_hetter=False).cat_config(bank)
        times: list[float] = []
        full = [0]

        def timed(*args: Any, times: list[float] = times, full: list[int] = full, **kwargs: Any) -> Any:
            started = time.perf_counter()
            test = assemble(*args, **kwargs)
            times.append(time.perf_counter() - started)
            full[0] += bool(test.full)
            return test

        selection.assemble = timed  # type: ignore[assignment]
        try:
            simulate(bank.engine, config, np.random.default_rng(5).normal(size=examinees), seed=5)
        finally:
            selection.assemble = assemble  # type: ignore[assignment]
        ms = np.asarray(times) * 1000
        out[f"shadow_{items}_selections"] = ms.size
        out[f"shadow_{items}_median_ms"] = float(np.median(ms))
        out[f"shadow_{items}_p99_ms"] = float(np.percentile(ms, 99))
        out[f"shadow_{items}_full_problem_share"] = full[0] / max(ms.size, 1)
    return out


def bench_blueprint(examinees: int = 2000) -> dict[str, Any]:
    """``examinees`` simulees (N(0, 1)) on the 1,000-item bank, fixed length 30: the shadow test
    of the 20-rule blueprint, without and with exposure control at the default 0.25 cap (item
    eligibility, and the seconds it takes to compute it);
    unconstrained max-info without and with the default exposure control (prices and
    Sympson-Hetter); Kingsbury-Zara content balancing on the blueprint's content-area shares, and
    beside it the shadow test held to those content rules alone. Violated rules per condition
    (all rules, and the content rules), RMSE, the RMSE ratios with their paired-bootstrap 95%
    intervals, and max exposure."""
    from irtcat.domain.blueprint import Blueprint, conformance
    from irtcat.domain.exposure import with_exposure_control
    from irtcat.irt.simulation import simulate

    bank, blueprint = blueprint_bank(1000)
    thetas = np.random.default_rng(2026).normal(size=examinees)
    shadow, maxinfo = _policy(blueprint, sympson_hetter=False), _policy(None, sympson_hetter=False)
    started = time.perf_counter()
    controlled_shadow, _ = with_exposure_control(bank, _policy(blueprint))
    exposure_s = time.perf_counter() - started
    controlled, _ = with_exposure_control(bank, _policy(None))
    mid = {a: 7.0 if a == "algebra" else 6.0 for a in AREAS}
    content_only = Blueprint.model_validate({"length": blueprint.length, "constraints": [
        c.model_dump(exclude_none=True) for c in blueprint.constraints
        if getattr(c, "attribute", None) == "content_area"]})
    conditions = {"shadow": (bank, shadow), "shadow_exposure": (controlled_shadow, _policy(blueprint)),
                  "maxinfo": (bank, maxinfo), "maxinfo_exposure": (controlled, _policy(None)),
                  "shadow_content_rules": (bank, _policy(content_only, sympson_hetter=False)),
                  "kingsbury_zara": (bank, _policy(None, sympson_hetter=False, content_targets=mid))}
    out: dict[str, Any] = {"blueprint_examinees": examinees, "blueprint_exposure_control_s": exposure_s}
    errors: dict[str, np.ndarray] = {}
    for name, (b, policy) in conditions.items():
        started = time.perf_counter()
        result = simulate(b.engine, policy.cat_config(b), thetas, seed=7)
        seconds = time.perf_counter() - started
        errors[name] = result.theta - result.true_theta
        summary = result.summary(b.engine)
        assert result.administered is not None
        report = conformance(blueprint, b, result.administered)
        violated = [r for r in report["rules"] if r["met"] < 1.0]
        out[f"blueprint_{name}_rmse"] = summary["rmse"]
        out[f"blueprint_{name}_max_exposure"] = summary["max_exposure"]
        out[f"blueprint_{name}_tests_meeting_every_rule"] = float(np.mean(
            [all(_met(blueprint, b, row)) for row in result.administered]))
        out[f"blueprint_{name}_rules_violated"] = len(violated)
        content = [r for r in report["rules"] if r["rule"].startswith("content_area=")]
        out[f"blueprint_{name}_content_rules_met_share"] = float(np.mean([r["met"] for r in content]))
        out[f"blueprint_{name}_tests_meeting_content_rules"] = float(np.mean(
            [all(_met(content_only, b, row)) for row in result.administered]))
        out[f"blueprint_{name}_tests_relaxed"] = sum(1 for r in result.relaxed.values() if r)
        out[f"blueprint_{name}_seconds"] = seconds
    # like for like in the last: the shadow test held to the content rules alone, which is all
    # Kingsbury-Zara knows
    for ratio, num, den in (("shadow_vs_maxinfo", "shadow", "maxinfo"),
                            ("shadow_vs_maxinfo_exposure", "shadow_exposure", "maxinfo_exposure"),
                            ("shadow_vs_kingsbury_zara", "shadow", "kingsbury_zara"),
                            ("shadow_content_rules_vs_kingsbury_zara", "shadow_content_rules", "kingsbury_zara")):
        out |= _rmse_ratio(f"blueprint_rmse_ratio_{ratio}", errors[num], errors[den])
    return out


def bench_blueprint_content(examinees: int = 8000) -> dict[str, Any]:
    """The like-for-like comparison with Kingsbury-Zara on more simulees than ``blueprint`` has
    (``examinees``, N(0, 1), another seed): the shadow test held to the blueprint's content rules
    alone against Kingsbury-Zara on the same areas' mid shares, fixed length 30, no exposure
    control. RMSE of each, tests meeting the content rules, and the RMSE ratio with its
    paired-bootstrap 95% interval."""
    from irtcat.domain.blueprint import Blueprint
    from irtcat.irt.simulation import simulate

    bank, blueprint = blueprint_bank(1000)
    thetas = np.random.default_rng(4242).normal(size=examinees)
    content_only = Blueprint.model_validate({"length": blueprint.length, "constraints": [
        c.model_dump(exclude_none=True) for c in blueprint.constraints
        if getattr(c, "attribute", None) == "content_area"]})
    mid = {a: 7.0 if a == "algebra" else 6.0 for a in AREAS}
    conditions = {"shadow_content_rules": _policy(content_only, sympson_hetter=False),
                  "kingsbury_zara": _policy(None, sympson_hetter=False, content_targets=mid)}
    out: dict[str, Any] = {"blueprint_content_examinees": examinees}
    errors: dict[str, np.ndarray] = {}
    for name, policy in conditions.items():
        result = simulate(bank.engine, policy.cat_config(bank), thetas, seed=8)
        errors[name] = result.theta - result.true_theta
        assert result.administered is not None
        out[f"blueprint_content_{name}_rmse"] = float(np.sqrt(np.mean(errors[name] ** 2)))
        out[f"blueprint_content_{name}_tests_meeting_content_rules"] = float(np.mean(
            [all(_met(content_only, bank, row)) for row in result.administered]))
    return out | _rmse_ratio("blueprint_content_rmse_ratio_shadow_vs_kingsbury_zara",
                             errors["shadow_content_rules"], errors["kingsbury_zara"])


def bench_blueprint_exposure(examinees: int = 6000) -> dict[str, Any]:
    """The exposure-controlled comparison on more simulees than ``blueprint`` has (``examinees``,
    N(0, 1), another seed): the shadow test of the 20-rule blueprint under item eligibility
    against max-info under its prices and Sympson-Hetter lottery, both at the default 0.25 cap,
    fixed length 30. RMSE and max exposure of each, tests meeting every rule, and the RMSE ratio
    with its paired-bootstrap 95% interval."""
    from irtcat.domain.exposure import with_exposure_control
    from irtcat.irt.simulation import simulate

    bank, blueprint = blueprint_bank(1000)
    thetas = np.random.default_rng(5151).normal(size=examinees)
    conditions = {"shadow": _policy(blueprint), "maxinfo": _policy(None)}
    out: dict[str, Any] = {"blueprint_exposure_examinees": examinees}
    errors: dict[str, np.ndarray] = {}
    for name, policy in conditions.items():
        controlled, _ = with_exposure_control(bank, policy)
        result = simulate(controlled.engine, policy.cat_config(controlled), thetas, seed=9)
        errors[name] = result.theta - result.true_theta
        assert result.administered is not None
        out[f"blueprint_exposure_{name}_rmse"] = float(np.sqrt(np.mean(errors[name] ** 2)))
        out[f"blueprint_exposure_{name}_max_exposure"] = result.summary(controlled.engine)["max_exposure"]
        out[f"blueprint_exposure_{name}_tests_meeting_every_rule"] = float(np.mean(
            [all(_met(blueprint, controlled, row)) for row in result.administered]))
    return out | _rmse_ratio("blueprint_exposure_rmse_ratio_shadow_vs_maxinfo", errors["shadow"], errors["maxinfo"])


def bench_blueprint_bound() -> dict[str, Any]:
    """What the blueprint itself costs under an exposure cap, with theta known: the allocation
    program's SE bound (``irtcat.irt.exposure.allocation_prices``: the best tests at every theta
    under the cap, against the 30 most informative items) on the 1,000-item bank, without and
    with the blueprint's count and sum rules, at the 0.25 cap and at 0.22 (the 0.88 of it that
    exposure control aims at); and the ratio of the two."""
    from irtcat.irt.exposure import allocation_prices

    bank, blueprint = blueprint_bank(1000)
    spec = _policy(blueprint).cat_config(bank).shadow
    out: dict[str, Any] = {}
    for cap in (0.25, 0.22):
        free = allocation_prices(bank.engine, cap, 30).bound
        held = allocation_prices(bank.engine, cap, 30, rules=spec).bound
        key = f"blueprint_bound_cap_{round(cap * 100)}"
        out[f"{key}_se_ratio"] = free
        out[f"{key}_blueprint_se_ratio"] = held
        out[f"{key}_blueprint_over_unconstrained"] = held / free
    return out


def _rmse_ratio(key: str, num: np.ndarray, den: np.ndarray) -> dict[str, Any]:
    """RMSE(num) / RMSE(den) under ``key``, and its paired-bootstrap interval under ``key``_ci95."""
    return {key: float(np.sqrt(np.mean(num**2) / np.mean(den**2))), f"{key}_ci95": rmse_ratio_interval(num, den)}


def rmse_ratio_interval(num: np.ndarray, den: np.ndarray, resamples: int = 4000, seed: int = 0) -> list[float]:
    """95% percentile interval of RMSE(num) / RMSE(den) by the paired bootstrap over simulees
    (Efron & Tibshirani 1993, ch. 13): both conditions ran the same simulees, so a resample keeps
    each simulee's two errors together."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, num.size, (resamples, num.size))
    ratios = np.sqrt((num[picks] ** 2).mean(axis=1) / (den[picks] ** 2).mean(axis=1))
    return [round(float(q), 4) for q in np.quantile(ratios, [0.025, 0.975])]


def _met(blueprint: Any, bank: Any, row: np.ndarray) -> list[bool]:
    from irtcat.domain.blueprint import conformance

    return [r["met"] == 1.0 for r in conformance(blueprint, bank, row[None, :])["rules"]]


BENCHES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "shadow_solve": lambda a: bench_shadow_solve(),
    "blueprint": lambda a: bench_blueprint(),
    "blueprint_content": lambda a: bench_blueprint_content(),
    "blueprint_bound": lambda a: bench_blueprint_bound(),
    "blueprint_exposure": lambda a: bench_blueprint_exposure(),
}
