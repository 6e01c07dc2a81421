"""Priors for MAP calibration: log a ~ N(mu, sigma^2), b ~ N(mu, sigma^2), c ~ Beta(alpha, beta),
and the production defaults with the study that chose them."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..model import FloatArray
from .data import CalibModel


@dataclass(frozen=True)
class Priors:
    """Optional priors (MAP). ``None`` switches a prior off."""

    log_a: tuple[float, float] | None = None  # (mu, sigma) of log a
    b: tuple[float, float] | None = None  # (mu, sigma)
    c: tuple[float, float] | None = None  # (alpha, beta)
    # re-estimate mu of the log-a prior every cycle from the current slopes (BILOG-MG's FLOAT)
    float_log_a: bool = False

    def floated(self, a: FloatArray) -> Priors:
        """These priors with mu of log a set to the mean log slope of ``a`` when ``float_log_a``.

        Empirical Bayes on the slopes (Mislevy 1986, "Bayes modal estimation in item response
        models"): maximising the joint posterior over the items and mu gives mu = mean(log a_i),
        so updating mu between M-steps is a coordinate-ascent step of the same objective
        (:func:`log_prior`).
        """
        if not self.float_log_a or self.log_a is None or a.size == 0:
            return self
        return replace(self, log_a=(float(np.mean(np.log(a))), self.log_a[1]))

    def describe(self) -> dict[str, object]:
        """The settings as a small JSON-able dict (the form :meth:`from_dict` reads)."""
        return {"log_a": list(self.log_a) if self.log_a else None, "b": list(self.b) if self.b else None,
                "c": list(self.c) if self.c else None, "float_log_a": self.float_log_a}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Priors:
        """Priors from ``{"log_a": [mu, sigma] | null, "b": [mu, sigma] | null,
        "c": [alpha, beta] | null, "float_log_a": bool}`` (missing keys: off). Raises
        ``ValueError`` naming the key when a setting is malformed."""
        unknown = set(doc) - {"log_a", "b", "c", "float_log_a"}
        if unknown:
            raise ValueError(f"unknown prior setting(s): {', '.join(sorted(unknown))} "
                             "(expected log_a, b, c, float_log_a)")

        def pair(key: str, positive_first: bool) -> tuple[float, float] | None:
            value = doc.get(key)
            if value is None:
                return None
            if (not isinstance(value, list | tuple) or len(value) != 2
                    or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
                raise ValueError(f"prior {key!r} must be a pair of numbers or null, got {value!r}")
            first, second = float(value[0]), float(value[1])
            if second <= 0 or (positive_first and first <= 0) or not math.isfinite(first + second):
                what = "both must be > 0" if positive_first else "sigma must be > 0"
                raise ValueError(f"prior {key!r} = {value!r}: {what}")
            return first, second

        floated = doc.get("float_log_a", False)
        if not isinstance(floated, bool):
            raise ValueError(f"prior 'float_log_a' must be true or false, got {floated!r}")
        return cls(log_a=pair("log_a", False), b=pair("b", False), c=pair("c", True), float_log_a=floated)

    @classmethod
    def default(cls, model: CalibModel) -> Priors:
        """1PL: none. 2PL: log a ~ N(mu, 0.5^2) and b ~ N(0, 3^2), weak enough to be negligible
        with hundreds of responses, but they keep an item seen by a narrow band of abilities
        (as adaptive tests do) from sliding to a -> 0, b -> +-6. mu floats (starts at 0, then
        the mean log slope): a prior fixed at a = 1 pulls a bank of steeper items down.
        3PL: the same plus c ~ Beta(3, 12) (mean 0.2, the weight of 13 pseudo-answers).

        The 3PL default was chosen, against no priors and other c priors (BILOG-MG's Beta(5, 17)
        among them), by the study of ``benchmarks/priors_study.py``: 18 generator cells varying
        slopes, difficulties and guessing, at 2,000 and 10,000 persons, 12 replications each, with
        cells held out of the choice. It is worse than no priors by more than one Monte Carlo SE
        on none of the 108 cell x parameter comparisons (Beta(5, 17) is on one: its pull to 0.23
        costs the slopes when guessing is spread over 0-0.25); docs/calibration.md.
        """
        if model == "1PL":
            return cls()
        if model == "2PL":
            return cls(log_a=(0.0, 0.5), b=(0.0, 3.0), float_log_a=True)
        return cls(log_a=(0.0, 0.5), b=(0.0, 3.0), c=(3.0, 12.0), float_log_a=True)


def priors_from(spec: str | dict[str, Any], model: CalibModel) -> Priors:
    """Priors from a setting: "default" (:meth:`Priors.default` for ``model``), "none" (plain
    MML) or a dict of settings (:meth:`Priors.from_dict`)."""
    if isinstance(spec, dict):
        return Priors.from_dict(spec)
    if spec == "default":
        return Priors.default(model)
    if spec == "none":
        return Priors()
    raise ValueError(f"priors must be 'default', 'none' or a dict of settings, got {spec!r}")

