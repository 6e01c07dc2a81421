"""What a test's policy decides for the adaptive step, in plain types (the domain's TestPolicy
maps to it). The rules it names live in :mod:`.selection` and :mod:`.stopping`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .estimation import Estimator, NormalPrior, Quadrature
from .shadow import ShadowSpec


@dataclass(frozen=True)
class Classification:
    """Stop once the examinee is classified against every cut in ``cuts`` (one cut: pass/fail;
    several: a proficiency level).

    ``ci``: theta_hat +- z SE excludes every cut (Kingsbury & Weiss 1983; with several cuts the
    interval then lies inside one level).
    ``sprt``: Wald's SPRT on L(cut + delta) / L(cut - delta) with error rates alpha and beta,
    decided for every cut (Reckase 1983; Eggen 1999; Eggen & Straetmans 2000 for several cuts).
    """

    cuts: tuple[float, ...]
    method: Literal["ci", "sprt"] = "ci"
    z: float = 1.96
    delta: float = 0.3
    alpha: float = 0.05
    beta: float = 0.05


@dataclass(frozen=True)
class CatConfig:
    """Estimation, selection and stopping settings of one test."""

    estimator: Estimator = "EAP"
    prior: NormalPrior = field(default_factory=NormalPrior)
    quadrature: Quadrature = field(default_factory=Quadrature)
    selection: str = "max_info"  # a name in irt.selection.SELECTION_RULES
    randomesque: int = 5
    strata: int = 4
    sympson_hetter: bool = False
    content_targets: dict[str, float] = field(default_factory=dict)
    se_threshold: float | None = 0.3
    min_items: int = 5
    max_items: int = 30
    theta_change: float | None = None
    classification: Classification | None = None
    pretest_positions: tuple[int, ...] = ()
    # the blueprint compiled against the bank, for the "shadow" selection rule (irt.shadow)
    shadow: ShadowSpec | None = None

    def __post_init__(self) -> None:
        if self.min_items < 0 or self.max_items < 1 or self.min_items > self.max_items:
            raise ValueError("need 0 <= min_items <= max_items and max_items >= 1")
        if self.randomesque < 1 or self.strata < 1:
            raise ValueError("randomesque and strata must be >= 1")
        if any(p < 1 for p in self.pretest_positions):
            raise ValueError("pretest positions are 1-based")
        total = sum(self.content_targets.values())
        if self.content_targets and (min(self.content_targets.values()) < 0 or total <= 0):
            raise ValueError("content targets must be non-negative with a positive sum")
