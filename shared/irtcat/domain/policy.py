"""The test policy: every psychometric choice of a test, validated, with safe defaults."""

from __future__ import annotations

import hashlib
import json
import re
from itertools import pairwise
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from ..irt.config import CatConfig, Classification
from ..irt.estimation import Estimator, NormalPrior, Quadrature
from ..irt.selection import rule_named
from .bank import ItemBank
from .base import Message
from .blueprint import Blueprint, compile_blueprint


class PriorPolicy(Message):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mean: float = Field(default=0.0, allow_inf_nan=False)
    sd: float = Field(default=1.0, gt=0, allow_inf_nan=False)


class ClassificationPolicy(Message):
    """Stop when the student is classified: against ``cut`` (pass/fail), against ``cuts`` (a
    level among several), or, with neither, against the cuts of the test's ``levels``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cut: float | None = Field(default=None, allow_inf_nan=False)
    cuts: list[float] | None = None
    method: Literal["ci", "sprt"] = "ci"
    z: float = Field(default=1.96, gt=0)
    delta: float = Field(default=0.3, gt=0)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    beta: float = Field(default=0.05, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _one_way(self) -> ClassificationPolicy:
        if self.cut is not None and self.cuts is not None:
            raise ValueError("classification: give cut or cuts, not both")
        if self.cuts is not None and (not self.cuts or any(b <= a for a, b in pairwise(self.cuts))):
            raise ValueError("classification: cuts must be a non-empty increasing list")
        return self


class ReportingScale(Message):
    """The score people read: ``scale = intercept + slope * theta``, rounded to ``decimals`` and
    kept within [``low``, ``high``]; its SE is ``slope * SE(theta)``, rounded the same way."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    intercept: float = Field(default=500.0, allow_inf_nan=False)
    slope: float = Field(default=100.0, gt=0, allow_inf_nan=False)
    decimals: int = Field(default=0, ge=0, le=3)
    low: float = Field(default=200.0, allow_inf_nan=False)
    high: float = Field(default=800.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _bounds(self) -> ReportingScale:
        if self.low >= self.high:
            raise ValueError("the reporting scale's low bound must be below its high bound")
        return self

    def score(self, theta: float, se: float) -> tuple[float, float]:
        """The scale score and its standard error."""
        value = min(self.high, max(self.low, self.intercept + self.slope * theta))
        return round(value, self.decimals), round(self.slope * se, self.decimals)


class ProficiencyLevel(Message):
    """A named level that starts at ``cut`` on the theta scale (the lowest level has no cut)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=64)
    cut: float | None = Field(default=None, allow_inf_nan=False)


DEFAULT_LEVELS = (ProficiencyLevel(name="below basic"), ProficiencyLevel(name="basic", cut=-1.0),
                  ProficiencyLevel(name="proficient", cut=0.0), ProficiencyLevel(name="advanced", cut=1.0))


class StoppingPolicy(Message):
    model_config = ConfigDict(extra="forbid", frozen=True)
    se_threshold: float | None = Field(default=0.3, gt=0)
    min_items: int = Field(default=5, ge=0)
    max_items: int = Field(default=30, ge=1, le=500)
    theta_change: float | None = Field(default=None, gt=0)
    classification: ClassificationPolicy | None = None
    time_limit_seconds: int | None = Field(
        default=None, ge=10, le=86_400,
        description="an answer arriving later is rejected and the session finishes with 'time_limit'")

    @model_validator(mode="after")
    def _order(self) -> StoppingPolicy:
        if self.min_items > self.max_items:
            raise ValueError("min_items must not exceed max_items")
        return self


class ScoringPolicy(Message):
    """How answers count toward the score."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exclude_rapid_guesses: bool = Field(
        default=False, description="effort-moderated scoring (Wise & DeMars 2006): an answer faster than its item's "
                                   "rapid-guess threshold is recorded but not scored (domain/effort.py)")


class TestPolicy(Message):
    """Per-test choices. Defaults: EAP with a N(0, 1) prior; maximum information with
    exposure control (each item's exposure rate at most ``max_exposure`` = 0.25: items ranked by
    information less the bank's ``exposure_price``, served after the Sympson-Hetter lottery on
    its ``exposure_k``, both computed for this policy by
    :func:`irtcat.domain.exposure.with_exposure_control`); stop at SE <= 0.3 or 30 items, at
    least 5 items; items a student saw in earlier sessions of the test are not served again."""

    __test__ = False  # not a pytest class
    model_config = ConfigDict(extra="forbid", frozen=True)

    test_id: str = Field(default="default", min_length=1, max_length=128)
    estimator: Estimator = "EAP"
    prior: PriorPolicy = PriorPolicy()
    quadrature_nodes: int = Field(default=61, ge=11, le=401)
    selection: str = Field(default="max_info", description="a registered selection rule (irt.selection)")
    randomesque: int = Field(default=1, ge=1, le=100)
    strata: int = Field(default=4, ge=1, le=20)
    sympson_hetter: bool = Field(
        default=True, description="exposure control: the bank's allocation prices and Sympson-Hetter lottery")
    max_exposure: float = Field(default=0.25, gt=0, le=1,
                                description="the exposure rate the bank's exposure control keeps items under")
    content_targets: dict[str, float] = Field(default_factory=dict)
    stopping: StoppingPolicy = StoppingPolicy()
    pretest_positions: list[int] = Field(default_factory=list)
    exclude_seen_items: bool = Field(
        default=True, description="never serve a student an item of their earlier sessions of this test")
    scale: ReportingScale = ReportingScale()
    levels: list[ProficiencyLevel] = Field(default_factory=lambda: list(DEFAULT_LEVELS))
    blueprint: Blueprint | None = Field(
        default=None, description="the rules every test meets (domain/blueprint.py); needs selection \"shadow\"")
    scoring: ScoringPolicy = ScoringPolicy()
    report_groups: list[str] = Field(
        default_factory=list, max_length=10,
        description="group variables of the student profile carried into the history (its groups/ prefix, which "
                    "only the analytics role reads), for DIF studies; none by default")

    @model_validator(mode="after")
    def _check(self) -> TestPolicy:
        rule_named(self.selection)
        bp = self.blueprint
        if (bp is not None) != (self.selection == "shadow"):
            raise ValueError("a blueprint is met by the selection rule \"shadow\", and that rule needs a blueprint")
        if bp is not None:
            s = self.stopping
            if bp.allow_early_stop and s.max_items != bp.length:
                raise ValueError(f"blueprint: stopping.max_items must equal its length {bp.length}")
            if not bp.allow_early_stop and not s.min_items == s.max_items == bp.length:
                raise ValueError(f"blueprint: a fixed-length test of {bp.length} items needs stopping.min_items = "
                                 f"max_items = {bp.length} (or \"allow_early_stop\": true)")
            if self.content_targets:
                raise ValueError("blueprint: content rules go in the blueprint, not content_targets")
        if any(not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", g) for g in self.report_groups):
            raise ValueError("report_groups: a group name is 1-32 lowercase letters, digits or _")
        if any(p < 1 for p in self.pretest_positions):
            raise ValueError("pretest positions are 1-based")
        if any(v < 0 for v in self.content_targets.values()):
            raise ValueError("content targets must be non-negative")
        if self.content_targets and sum(self.content_targets.values()) <= 0:
            raise ValueError("content targets must have a positive sum")
        if self.stopping.classification is not None and not self.classification_cuts():
            raise ValueError("classification needs a cut, cuts, or levels with cuts")
        if self.levels:
            if self.levels[0].cut is not None or any(lv.cut is None for lv in self.levels[1:]):
                raise ValueError("levels: the first level has no cut, every other one has one")
            cuts = [float(lv.cut) for lv in self.levels[1:] if lv.cut is not None]
            if any(b <= a for a, b in pairwise(cuts)):
                raise ValueError("levels: the cuts must increase")
        return self

    def classification_cuts(self) -> tuple[float, ...]:
        """The cuts the classification rule decides against (see :class:`ClassificationPolicy`)."""
        cls = self.stopping.classification
        if cls is None:
            return ()
        if cls.cut is not None:
            return (cls.cut,)
        if cls.cuts is not None:
            return tuple(cls.cuts)
        return tuple(float(lv.cut) for lv in self.levels if lv.cut is not None)

    def level(self, theta: float) -> str | None:
        """The name of the proficiency level ``theta`` reaches (None when no levels are set)."""
        name = None
        for lv in self.levels:
            if lv.cut is None or theta >= lv.cut:
                name = lv.name
        return name

    def exposure_digest(self) -> str:
        """A digest of the choices that shape which items are served, so how often: selection,
        cap, lottery, stopping, prior, estimator, content targets, blueprint, pretest slots (the
        test id, scale and levels do not matter). A bank's exposure control names the digest of
        the policy it was computed for (:class:`~irtcat.domain.bank.ExposureControl`)."""
        return hashlib.sha256(json.dumps(self.exposure_shaping(), sort_keys=True).encode()).hexdigest()[:16]

    def exposure_shaping(self) -> dict[str, Any]:
        """The choices :meth:`exposure_digest` covers, as JSON (a policy on their own)."""
        return self.model_dump(mode="json", include={
            "selection", "randomesque", "strata", "sympson_hetter", "max_exposure", "content_targets", "stopping",
            "prior", "estimator", "blueprint", "pretest_positions", "exclude_seen_items"})

    def exposure_problem(self, bank: ItemBank) -> str | None:
        """Why ``bank`` does not carry the exposure control this policy asks for (None: it does,
        or the policy asks for none)."""
        if not self.sympson_hetter or self.max_exposure >= 1.0:
            return None
        marker = bank.exposure_control
        if marker is None:
            return (f"bank {bank.bank_id} v{bank.version} carries no exposure control: run irtcat exposure "
                    "--bank B --policy P (without it one item may be served to every student)")
        if marker.policy_digest != self.exposure_digest():
            return (f"bank {bank.bank_id} v{bank.version} carries exposure control for another policy: run "
                    "irtcat exposure --bank B --policy P for this one")
        return None

    def cat_config(self, bank: ItemBank | None = None) -> CatConfig:
        """The engine's configuration for this policy (with its blueprint compiled against
        ``bank`` for the shadow-test rule)."""
        s = self.stopping
        cls = s.classification
        return CatConfig(
            estimator=self.estimator,
            prior=NormalPrior(self.prior.mean, self.prior.sd),
            quadrature=Quadrature(n=self.quadrature_nodes),
            selection=self.selection,
            randomesque=self.randomesque,
            strata=self.strata,
            sympson_hetter=self.sympson_hetter,
            content_targets=dict(self.content_targets),
            se_threshold=s.se_threshold,
            min_items=s.min_items,
            max_items=s.max_items,
            theta_change=s.theta_change,
            classification=Classification(cuts=self.classification_cuts(), method=cls.method, z=cls.z,
                                          delta=cls.delta, alpha=cls.alpha, beta=cls.beta) if cls else None,
            pretest_positions=tuple(self.pretest_positions),
            shadow=compile_blueprint(self.blueprint, bank) if self.blueprint is not None and bank is not None else None,
        )


class TestDefinition(Message):
    """A test: which bank it draws from and its policy (stored beside the banks)."""

    __test__ = False
    model_config = ConfigDict(extra="forbid")

    test_id: str
    bank_id: str
    policy: TestPolicy = Field(default_factory=TestPolicy)
    # the version of ``policy`` as published (a published version never changes; sessions refer
    # to it); None before the store has published it
    policy_version: int | None = None
