"""A test's blueprint: the hard rules every student's test meets (content, item types, depth of
knowledge, working time, enemies, passages), and its compilation against a bank for the
shadow-test selection rule (:mod:`irtcat.irt.shadow`; van der Linden 2005, ch. 9).

An attribute is one of the item's ``attributes`` (string values), or ``content_area``, or
``item_type`` (derived from the item: ``choice``, ``multiple_response``, ``inline_choice``,
``numeric``, ``text``). Pretest slots do not count toward the blueprint.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from ..irt.shadow import CountRule, SetRule, ShadowSpec, SumRule
from .bank import Item, ItemBank
from .base import Message
from .responses import ITEM_KINDS

ITEM_TYPES = ITEM_KINDS  # the bank's one item-kind vocabulary (domain/responses.py)


def _check_bounds(name: str, low: float | None, high: float | None) -> None:
    """A rule needs a bound, and its min may not exceed its max (the error names the rule)."""
    if low is None and high is None:
        raise ValueError(f"rule {name}: give min, max or both")
    if low is not None and high is not None and low > high:
        raise ValueError(f"rule {name}: min {low:g} exceeds max {high:g}")


class AttributeRule(Message):
    """Between ``min`` and ``max`` items whose ``attribute`` is ``value``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    attribute: str = Field(min_length=1, max_length=64)
    value: str = Field(max_length=128)
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> AttributeRule:
        _check_bounds(self.name, self.min, self.max)
        return self

    @property
    def name(self) -> str:
        return f"{self.attribute}={self.value}"


class TotalRule(Message):
    """The test's total of an item quantity (``expected_seconds``) between ``min`` and ``max``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sum: Literal["expected_seconds"]
    min: float | None = Field(default=None, ge=0)
    max: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> TotalRule:
        _check_bounds(self.name, self.min, self.max)
        return self

    @property
    def name(self) -> str:
        return f"sum {self.sum}"


class SetsRule(Message):
    """Items that share ``attribute`` (a passage) are served together, from ``items_min`` to
    ``items_max`` of them, in at most ``max_sets`` sets per test."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    attribute: str = Field(default="passage", min_length=1, max_length=64)
    items_min: int = Field(default=1, ge=1)
    items_max: int | None = Field(default=None, ge=1)
    max_sets: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> SetsRule:
        if self.items_max is not None and self.items_max < self.items_min:
            raise ValueError(f"sets: items_max {self.items_max} is below items_min {self.items_min}")
        return self


class Blueprint(Message):
    """The rules of a test (``policy.blueprint``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(default=1, ge=1)
    length: int = Field(ge=1, le=500)
    constraints: list[AttributeRule | TotalRule] = Field(default_factory=list)
    enemies: list[list[str]] = Field(default_factory=list)
    sets: SetsRule | None = None
    allow_early_stop: bool = False

    @model_validator(mode="before")
    @classmethod
    def _kinds(cls, data: Any) -> Any:
        """A constraint with ``sum`` is a total, any other an attribute rule (errors name it)."""
        if isinstance(data, dict) and isinstance(data.get("constraints"), list):
            data = {**data, "constraints": [
                TotalRule.model_validate(c) if isinstance(c, dict) and "sum" in c
                else AttributeRule.model_validate(c) if isinstance(c, dict) else c
                for c in data["constraints"]]}
        return data

    @model_validator(mode="after")
    def _check(self) -> Blueprint:
        for rule in self.constraints:
            if isinstance(rule, AttributeRule) and rule.min is not None and rule.min > self.length:
                raise ValueError(f"rule {rule.name}: min {rule.min} exceeds the test length {self.length}")
        for k, group in enumerate(self.enemies):
            if len(set(group)) < 2:
                raise ValueError(f"enemies[{k}]: an enemy set names two or more different items")
        if self.sets is not None and self.sets.items_min > self.length:
            raise ValueError(f"sets: items_min {self.sets.items_min} exceeds the test length {self.length}")
        return self


def item_type(item: Item) -> str:
    """The item's kind in the bank's one vocabulary (:data:`ITEM_TYPES`)."""
    return item.kind or "text"


def attribute_of(item: Item, attribute: str) -> str | None:
    """An item's value of a blueprint attribute (None: the item has none)."""
    if attribute == "content_area":
        return item.content_area
    if attribute == "item_type":
        return item_type(item)
    return item.attributes.get(attribute)


class BlueprintError(ValueError):
    """A blueprint that does not fit its bank (an enemy that is not in it); the message names it."""


_COMPILED: dict[tuple[str, int, int, str, float, int], ShadowSpec] = {}


def compile_blueprint(blueprint: Blueprint, bank: ItemBank, time_limit: float = 0.05,
                      candidates_per_group: int = 8) -> ShadowSpec:
    """The blueprint as arrays over ``bank``'s items, cached per bank object and blueprint (a
    bank version never changes; a container keeps both)."""
    key = (bank.bank_id, bank.version, id(bank), blueprint.model_dump_json(), time_limit, candidates_per_group)
    spec = _COMPILED.get(key)
    if spec is None:
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        spec = _COMPILED[key] = _compile(blueprint, bank, time_limit, candidates_per_group)
    return spec


def _compile(blueprint: Blueprint, bank: ItemBank, time_limit: float, candidates: int) -> ShadowSpec:
    items = bank.items
    index = bank.engine.index
    counts, sums = [], []
    for rule in blueprint.constraints:
        if isinstance(rule, AttributeRule):
            members = np.array([attribute_of(it, rule.attribute) == rule.value for it in items])
            counts.append(CountRule(rule.name, members, lo=rule.min or 0, hi=rule.max))
        else:
            weights = np.array([it.expected_seconds or 0.0 for it in items], dtype=np.float64)
            sums.append(SumRule(rule.name, weights, lo=rule.min, hi=rule.max))
    enemies = []
    for group in blueprint.enemies:
        missing = [i for i in group if i not in index]
        if len(group) - len(missing) >= 2:
            enemies.append(np.array([index[i] for i in group if i in index], dtype=np.int64))
    sets = None
    if blueprint.sets is not None:
        together = blueprint.sets
        names = sorted({v for it in items if (v := attribute_of(it, together.attribute))})
        number = {v: k for k, v in enumerate(names)}
        set_of = np.array([number.get(attribute_of(it, together.attribute) or "", -1) for it in items],
                          dtype=np.int64)
        sets = SetRule(set_of, together.items_min, together.items_max, together.max_sets)
    return ShadowSpec(length=blueprint.length, counts=tuple(counts), sums=tuple(sums), enemies=tuple(enemies),
                      sets=sets, time_limit=time_limit, candidates_per_group=candidates)


def operational_positions(bank: ItemBank) -> np.ndarray:
    return np.flatnonzero(bank.engine.operational)


def check_blueprint(blueprint: Blueprint, bank: ItemBank, max_tests: int = 1000) -> dict[str, Any]:
    """Whether ``bank`` can meet ``blueprint``: the rules a test assembled from every operational
    item (most informative at theta = 0) must relax (none: feasible), the enemy sets naming items
    the bank lacks, and a greedy lower bound on how many tests without a shared item the bank
    can supply (assemble one, set its items aside, repeat until a rule must give way)."""
    from ..irt.shadow import assemble

    spec = compile_blueprint(blueprint, bank, time_limit=2.0, candidates_per_group=0)
    engine = bank.engine
    info = engine.information(np.zeros(1))[0].astype(np.float64)
    allowed = engine.operational.copy()
    empty = np.zeros(0, dtype=np.int64)
    first = assemble(spec, info, empty, allowed)
    missing = sorted({i for group in blueprint.enemies for i in group if i not in engine.index})
    feasible = bool(first.items.size == blueprint.length and not first.relaxed)
    disjoint = 0
    test = first
    while feasible and disjoint < max_tests and test.items.size == blueprint.length and not test.relaxed:
        disjoint += 1
        allowed[test.items] = False
        if allowed.sum() < blueprint.length:
            break
        test = assemble(spec, info, empty, allowed)
    return {"feasible": feasible, "length": blueprint.length, "operational_items": int(engine.operational.sum()),
            "infeasible_rules": [{"rule": r, "by": b} for r, b in first.relaxed],
            "short_by": max(0, blueprint.length - int(first.items.size)),
            "enemies_not_in_bank": missing, "disjoint_tests_at_least": disjoint}


def conformance(blueprint: Blueprint, bank: ItemBank, administered: np.ndarray) -> dict[str, Any]:
    """Per rule, the share of tests that met it and the worst deviation (items, or the sum's
    units, outside the rule's bounds); ``administered``: item positions per test, -1 padded
    (pretest items are left out, as they do not count)."""
    spec = compile_blueprint(blueprint, bank)
    ops = bank.engine.operational
    tests = [row[(row >= 0)] for row in administered]
    tests = [t[ops[t]] for t in tests]
    rows: list[dict[str, Any]] = []

    def report(name: str, deviations: list[float]) -> None:
        dev = np.asarray(deviations, dtype=np.float64)
        rows.append({"rule": name, "met": float(np.mean(dev <= 1e-9)) if dev.size else 1.0,
                     "worst": float(dev.max()) if dev.size else 0.0})

    report("length", [abs(t.size - blueprint.length) for t in tests])
    for rule in spec.counts:
        counts = [int(rule.members[t].sum()) for t in tests]
        report(rule.name, [max(rule.lo - c, c - rule.hi if rule.hi is not None else 0, 0) for c in counts])
    for srule in spec.sums:
        totals = [float(srule.weights[t].sum()) for t in tests]
        report(srule.name, [max((srule.lo or 0.0) - x, x - srule.hi if srule.hi is not None else 0.0, 0.0)
                            for x in totals])
    if spec.enemies:
        report("enemies", [float(sum(max(0, int(np.isin(e, t).sum()) - 1) for e in spec.enemies)) for t in tests])
    if spec.sets is not None:
        sets = spec.sets
        devs = []
        for t in tests:
            of = sets.set_of[t]
            ids, sizes = np.unique(of[of >= 0], return_counts=True)
            hi = sets.items_max if sets.items_max is not None else np.inf
            dev = float(sum(max(sets.items_min - c, c - hi, 0) for c in sizes))
            if sets.max_sets is not None:
                dev += max(0, ids.size - sets.max_sets)
            devs.append(dev)
        report("sets", devs)
    met_all = [all(r["met"] == 1.0 for r in rows)]
    return {"tests": len(tests), "rules": rows, "all_rules_met": bool(met_all[0]),
            "blueprint_version": blueprint.version}
