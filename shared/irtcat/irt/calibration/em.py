"""The EM driver every calibration runs: EM accelerated by SQUAREM, as a loop that can stop and
resume between any two E-steps.

EM here is a map x -> M(E(x)) on the vector of every estimated parameter. The driver
(:class:`EMRun`) never runs an E-step itself: it *asks* for the point whose E-step it needs and
is *told* that point's M-step image and its objective (log-likelihood + log prior). Whoever
computes the E-step (in one process, over shards of persons, or as a Step Functions job whose
Lambdas keep this object's :meth:`EMRun.to_doc` between cycles) therefore follows the same path
and stops at the same point.

* **SQUAREM** (Varadhan & Roland 2008, scheme S3): from x0 and its image x1 = EM(x0), take
  x2 = EM(x1), r = x1 - x0, v = x2 - 2 x1 + x0, alpha = min(-|r| / |v|, -1), and EM of the
  extrapolated point x0 - 2 alpha r + alpha^2 v projected into the parameter space. The jump is
  kept when its objective is at least x1's; otherwise x2 (two plain EM cycles). So the objective
  at the accepted points never falls (the monotone safeguard), and ``trace`` records it.
* **Converged** when the largest parameter change of an accepted step is below ``tol`` and the
  relative change of the objective below ``ll_tol``. OEM (Ban et al. 2001) is one plain cycle by
  definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..model import FloatArray
from .data import Latent, NodesKind, quadrature


class CalibrationWarning(UserWarning):
    """The EM reached its cycle cap before converging."""


@dataclass(frozen=True)
class EMSettings:
    """How an EM run goes, the same for every way of running it: quadrature (``n_nodes``
    equally spaced on [-6, 6], or Gauss-Hermite), convergence (``tol`` on the largest parameter
    change, ``ll_tol`` on the relative change of the objective), the cycle cap and SQUAREM."""

    n_nodes: int = 41
    nodes_kind: NodesKind = "equal"
    tol: float = 1e-4
    ll_tol: float = 1e-7
    max_cycles: int = 500
    accelerate: bool = True
    method: Literal["mem", "oem"] = "mem"

    def quadrature(self) -> tuple[FloatArray, FloatArray]:
        """Nodes and log prior weights of N(0, 1)."""
        nodes, weights = quadrature(self.n_nodes, self.nodes_kind)
        return nodes, np.log(weights)


@dataclass
class EMRun:
    """A resumable SQUAREM-accelerated EM path (module docstring). ``x`` is the last accepted
    point; ``stage`` says which point of the current step waits for its E-step (0: ``x``,
    1: its image ``x1``, 2: the extrapolated ``jump``). ``cycles`` counts E-steps."""

    settings: EMSettings
    x: FloatArray
    stage: int = 0
    x1: FloatArray | None = None
    x2: FloatArray | None = None
    jump: FloatArray | None = None
    value_x1: float = math.nan
    accelerating: bool = False
    cycles: int = 0
    trace: list[float] = field(default_factory=list)
    change: float = math.inf
    converged: bool = False

    @property
    def finished(self) -> bool:
        return self.converged or (self.stage == 0 and self.cycles >= self.settings.max_cycles)

    def ask(self) -> FloatArray | None:
        """The point whose E-step the run needs next (None: the run is over)."""
        if self.finished:
            return None
        point = (self.x, self.x1, self.jump)[self.stage]
        assert point is not None
        return point

    def tell(self, image: FloatArray, objective: float, project: Callable[[FloatArray], FloatArray],
             change: Callable[[FloatArray, FloatArray], float]) -> bool:
        """The M-step image of the asked point and the objective there. ``project`` keeps an
        extrapolated point inside the parameter space; ``change(before, after)`` is the largest
        parameter move. Returns True when this completed a step (a point was accepted)."""
        self.cycles += 1
        if self.stage == 0:
            self.trace.append(objective)
            s = self.settings
            self.accelerating = s.accelerate and s.method == "mem" and self.cycles - 1 + 3 <= s.max_cycles
            if not self.accelerating:
                return self._accept(image, change)
            self.x1, self.stage = image, 1
            return False
        if self.stage == 1:
            assert self.x1 is not None
            self.value_x1, self.x2 = objective, image
            r = self.x1 - self.x
            v = image - self.x1 - r
            norm_v = float(np.linalg.norm(v))
            alpha = min(-float(np.linalg.norm(r)) / norm_v if norm_v > 0 else -1.0, -1.0)
            self.jump, self.stage = project(self.x - 2 * alpha * r + alpha**2 * v), 2
            return False
        assert self.x2 is not None
        # x2's objective is not known yet: the jump is kept when it beats x1's, and the next
        # step's first objective (at the jump's image, or at x2) is what the trace records
        return self._accept(image if objective >= self.value_x1 else self.x2, change)

    def _accept(self, point: FloatArray, change: Callable[[FloatArray, FloatArray], float]) -> bool:
        self.change = change(self.x, point)
        self.x, self.stage, self.x1, self.x2, self.jump = point, 0, None, None, None
        t, s = self.trace, self.settings
        if s.method == "oem" or (len(t) >= 2 and self.change < s.tol and abs(t[-1] - t[-2]) <= s.ll_tol * abs(t[-1])):
            self.converged = True
        return True

    def to_doc(self) -> dict[str, Any]:
        """The run's state as JSON-able values (what a job keeps between its steps)."""
        def vec(x: FloatArray | None) -> list[float] | None:
            return None if x is None else [float(v) for v in x]

        return {"x": vec(self.x), "stage": self.stage, "x1": vec(self.x1), "x2": vec(self.x2),
                "jump": vec(self.jump), "value_x1": None if math.isnan(self.value_x1) else self.value_x1,
                "accelerating": self.accelerating, "cycles": self.cycles, "trace": list(self.trace),
                "change": None if math.isinf(self.change) else self.change, "converged": self.converged}

    @classmethod
    def from_doc(cls, settings: EMSettings, doc: dict[str, Any]) -> EMRun:
        def vec(x: list[float] | None) -> FloatArray | None:
            return None if x is None else np.array(x, dtype=np.float64)

        x = vec(doc["x"])
        assert x is not None
        return cls(settings, x, doc["stage"], vec(doc["x1"]), vec(doc["x2"]), vec(doc["jump"]),
                   math.nan if doc["value_x1"] is None else float(doc["value_x1"]), doc["accelerating"],
                   doc["cycles"], list(doc["trace"]), math.inf if doc["change"] is None else float(doc["change"]),
                   doc["converged"])


def update_latent(
    mass: FloatArray, nodes: FloatArray, latent: Latent, anchored: bool
) -> tuple[FloatArray, float, float]:
    """New log prior weights from the posterior mass at each node (summed over persons)."""
    mass = mass / mass.sum()
    mean = float(mass @ nodes)
    sd = float(np.sqrt(max(float(mass @ (nodes - mean) ** 2), 1e-6)))
    if latent == "normal":
        if not anchored:
            return np.log(np.exp(-0.5 * nodes**2) / np.exp(-0.5 * nodes**2).sum()), 0.0, 1.0
        g = np.exp(-0.5 * ((nodes - mean) / sd) ** 2)
        return np.log(g / g.sum()), mean, sd
    # empirical histogram; without anchors the scale is set by standardising it
    if not anchored:
        z = (nodes - mean) / sd
        mass = np.interp(nodes, z, mass, left=0.0, right=0.0)
        mass = np.maximum(mass, 1e-12)
        mass /= mass.sum()
        mean, sd = 0.0, 1.0
    out: FloatArray = np.log(np.maximum(mass, 1e-300))
    return out, mean, sd


