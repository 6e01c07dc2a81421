"""The test policy: every psychometric choice of a test, validated, with safe defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from ..irt.cat import CatConfig, Classification, SelectionRule
from ..irt.estimation import Estimator, NormalPrior, Quadrature
from .base import Message


class PriorPolicy(Message):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mean: float = Field(default=0.0, allow_inf_nan=False)
    sd: float = Field(default=1.0, gt=0, allow_inf_nan=False)


class ClassificationPolicy(Message):
    model_config = ConfigDict(extra="forbid", frozen=True)
    cut: float = Field(allow_inf_nan=False)
    method: Literal["ci", "sprt"] = "ci"
    z: float = Field(default=1.96, gt=0)
    delta: float = Field(default=0.3, gt=0)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    beta: float = Field(default=0.05, gt=0, lt=0.5)


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


class TestPolicy(Message):
    """Per-test choices. Defaults: EAP with a N(0, 1) prior; maximum information with
    Sympson-Hetter exposure control (each item's exposure rate at most
    ``max_exposure`` = 0.25, with the bank's ``exposure_k`` computed for this policy by
    :func:`irtcat.domain.exposure.with_exposure_control`); stop at SE <= 0.3 or 30 items, at
    least 5 items; items a student saw in earlier sessions of the test are not served again."""

    __test__ = False  # not a pytest class
    model_config = ConfigDict(extra="forbid", frozen=True)

    test_id: str = Field(default="default", min_length=1, max_length=128)
    estimator: Estimator = "EAP"
    prior: PriorPolicy = PriorPolicy()
    quadrature_nodes: int = Field(default=61, ge=11, le=401)
    selection: SelectionRule = "max_info"
    randomesque: int = Field(default=1, ge=1, le=100)
    strata: int = Field(default=4, ge=1, le=20)
    sympson_hetter: bool = True
    max_exposure: float = Field(default=0.25, gt=0, le=1,
                                description="the exposure rate the bank's Sympson-Hetter parameters keep items under")
    content_targets: dict[str, float] = Field(default_factory=dict)
    stopping: StoppingPolicy = StoppingPolicy()
    pretest_positions: list[int] = Field(default_factory=list)
    exclude_seen_items: bool = Field(
        default=True, description="never serve a student an item of their earlier sessions of this test")

    @model_validator(mode="after")
    def _check(self) -> TestPolicy:
        if any(p < 1 for p in self.pretest_positions):
            raise ValueError("pretest positions are 1-based")
        if any(v < 0 for v in self.content_targets.values()):
            raise ValueError("content targets must be non-negative")
        if self.content_targets and sum(self.content_targets.values()) <= 0:
            raise ValueError("content targets must have a positive sum")
        return self

    def cat_config(self) -> CatConfig:
        """The engine's configuration for this policy."""
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
            classification=Classification(**cls.model_dump()) if cls else None,
            pretest_positions=tuple(self.pretest_positions),
        )
