"""Which 3PL default holds off its own generator? A study of candidate priors (and quadrature)
over generator cells that vary slopes, difficulties and guessing independently, with some cells
held out of the choice (``./dev bench --only priors_study``).

Cells: slopes LogNormal(0, 0.3) or U(0.5, 2.5); difficulties N(0, 1), U(-2.5, 2.5) or skewed
(Gamma(2, 0.7) - 1.4: mean 0, a long right tail); guessing fixed at 0.2, U(0, 0.25) or
U(0, 0.35); 50 items, complete data, N = 2,000 and 10,000 persons, abilities N(0, 1). The choice
uses the cells with normal or uniform difficulties and guessing fixed or up to 0.25; the other
cells (skewed difficulties, or guessing up to 0.35) are held out for the final check.

Per cell and candidate: RMSE of a, b and c against the generating values, averaged over the
replications, and the paired difference from no priors with its Monte Carlo standard error
(SD of the per-replication differences / sqrt(replications)). A candidate *holds* on a set of
cells when on none of them its RMSE of a, b or c exceeds that of no priors by more than that SE.
The choice minimises the mean over the choice cells of the RMSE of b relative to no priors, among
candidates that hold on the choice cells. The final check: the chosen candidate holds on every
cell, held-out ones included. Every candidate's check is reported, so a near miss is visible.
"""

from __future__ import annotations

import itertools
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))

from irtcat.irt.calibration import CalibrationWarning, Priors, ResponseData, calibrate
from irtcat.irt.datagen import generate_responses
from irtcat.irt.model import ItemParameters

SLOPES = ("lognormal", "uniform")
DIFFICULTIES = ("normal", "uniform", "skewed")
GUESSING = ("fixed", "uniform25", "uniform35")
PERSONS = {2000: 12, 10000: 12}  # persons: replications
ITEMS = 50


@dataclass(frozen=True)
class Cell:
    slopes: str
    difficulties: str
    guessing: str
    persons: int

    @property
    def name(self) -> str:
        return f"a {self.slopes}, b {self.difficulties}, c {self.guessing}, N {self.persons}"

    @property
    def held_out(self) -> bool:
        return self.difficulties == "skewed" or self.guessing == "uniform35"

    def parameters(self, seed: int) -> ItemParameters:
        rng = np.random.default_rng([seed, ITEMS])
        a = rng.lognormal(0.0, 0.3, ITEMS) if self.slopes == "lognormal" else rng.uniform(0.5, 2.5, ITEMS)
        if self.difficulties == "normal":
            b = rng.normal(0.0, 1.0, ITEMS)
        elif self.difficulties == "uniform":
            b = rng.uniform(-2.5, 2.5, ITEMS)
        else:
            b = rng.gamma(2.0, 0.7, ITEMS) - 1.4
        c = {"fixed": np.full(ITEMS, 0.2), "uniform25": rng.uniform(0.0, 0.25, ITEMS),
             "uniform35": rng.uniform(0.0, 0.35, ITEMS)}[self.guessing]
        return ItemParameters.from_arrays(a=a, b=np.clip(b, -3.5, 3.5), c=c, d=np.ones(ITEMS), scale=1.0)


CELLS = [Cell(s, d, g, n) for s, d, g, n in itertools.product(SLOPES, DIFFICULTIES, GUESSING, PERSONS)]

# candidate 3PL defaults: (priors, nodes)
CANDIDATES: dict[str, tuple[Priors, int]] = {
    "none": (Priors(), 41),
    "c~Beta(5,17) (BILOG-MG)": (Priors(log_a=(0.0, 0.5), b=(0.0, 3.0), c=(5.0, 17.0), float_log_a=True), 41),
    "c~Beta(3,12)": (Priors(log_a=(0.0, 0.5), b=(0.0, 3.0), c=(3.0, 12.0), float_log_a=True), 41),
    "c~Beta(2,8)": (Priors(log_a=(0.0, 0.5), b=(0.0, 3.0), c=(2.0, 8.0), float_log_a=True), 41),
    "c~Beta(2,10)": (Priors(log_a=(0.0, 0.5), b=(0.0, 3.0), c=(2.0, 10.0), float_log_a=True), 41),
    "c~Beta(1.5,6)": (Priors(log_a=(0.0, 0.5), b=(0.0, 3.0), c=(1.5, 6.0), float_log_a=True), 41),
    "c~Beta(2,8), 61 nodes": (Priors(log_a=(0.0, 0.5), b=(0.0, 3.0), c=(2.0, 8.0), float_log_a=True), 61),
}


def rmse(cell: Cell, seed: int, priors: Priors, nodes: int) -> dict[str, float]:
    """RMSE of a, b, c of one replication of ``cell``."""
    params = cell.parameters(seed)
    thetas = np.random.default_rng([seed, 1]).normal(size=cell.persons)
    data = ResponseData.from_long(*generate_responses(params, thetas, seed=seed + 7))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        r = calibrate(data, "3PL", priors=priors, n_nodes=nodes)
    return {k: float(np.sqrt(np.mean((getattr(r, k) - getattr(params, k)) ** 2))) for k in ("a", "b", "c")}


def study(cells: list[Cell] = CELLS, candidates: dict[str, tuple[Priors, int]] = CANDIDATES
          ) -> dict[str, Any]:
    """Every cell x candidate x replication; the choice and the held-out check (module docstring)."""
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    for k, cell in enumerate(cells):
        for rep in range(PERSONS[cell.persons]):
            seed = 1000 * k + rep
            for name, (priors, nodes) in candidates.items():
                runs.setdefault((cell.name, name), []).append(rmse(cell, seed, priors, nodes))
    out: dict[str, Any] = {"priors_study_cells": len(cells),
                           "priors_study_replications": ", ".join(f"{r} at N {n}" for n, r in PERSONS.items())}

    def diff(cell: Cell, name: str, key: str) -> tuple[float, float]:
        """Mean paired difference from no priors, and its Monte Carlo SE."""
        d = np.array([x[key] - y[key] for x, y in zip(runs[(cell.name, name)], runs[(cell.name, "none")],
                                                     strict=True)])
        return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else math.inf

    def losses(name: str, among: list[Cell]) -> list[str]:
        """Where ``name`` is worse than no priors by more than one Monte Carlo SE."""
        found = []
        for cell in among:
            for key in ("a", "b", "c"):
                mean, se = diff(cell, name, key)
                if mean > se:
                    found.append(f"{cell.name} {key}: +{mean:.4f} (SE {se:.4f})")
        return found

    choice = [c for c in cells if not c.held_out]
    scores = {}
    for name in candidates:
        if name == "none":
            continue
        ratio = float(np.mean([np.mean([x["b"] for x in runs[(c.name, name)]])
                               / np.mean([x["b"] for x in runs[(c.name, "none")]]) for c in choice]))
        holds = not losses(name, choice)
        everywhere = losses(name, cells)
        out[f"priors_study_{name}_choice_rmse_b_ratio"] = ratio
        out[f"priors_study_{name}_holds_on_choice_cells"] = holds
        out[f"priors_study_{name}_worse_than_none_on"] = (f"{len(everywhere)} of {3 * len(cells)}"
                                                          " cell x parameter comparisons")
        if holds:
            scores[name] = ratio
    chosen = min(scores, key=lambda n: scores[n]) if scores else "none"
    out["priors_study_chosen"] = chosen
    for cell in cells:
        for name in candidates:
            means = {key: float(np.mean([x[key] for x in runs[(cell.name, name)]])) for key in ("a", "b", "c")}
            out[f"priors_study_{cell.name} | {name}"] = " / ".join(f"{means[k]:.4f}" for k in ("a", "b", "c"))
        if chosen != "none":
            out[f"priors_study_{cell.name} | chosen - none (SE)"] = " / ".join(
                "{:+.4f} ({:.4f})".format(*diff(cell, chosen, k)) for k in ("a", "b", "c"))
    failures = losses(chosen, cells) if chosen != "none" else []
    out["priors_study_held_out_check"] = "passed" if not failures else "; ".join(failures)
    return out

if __name__ == "__main__":
    for key, value in study().items():
        print(f"{key}: {value}")
