"""Which default priors? A calibration study over several data generators and designs, with
the PyPI ``mirt`` fitted to the very same data sets in the same run
(``./dev bench --only calibration_study``; or ``python benchmarks/calibration_study.py`` for the
markdown table).

Generators (``irtcat.irt.datagen.generate_parameters``): slopes N(1.2, 0.25), LogNormal(0, 0.25)
or U(0.5, 2.5); guessing Beta(5, 17) or U(0, 0.25); b ~ N(0, 1). Designs: complete (every
person answers every item) and CAT-sparse (a max-information CAT of 30 items from the bank;
items scored where they have >= 300 responses, as in the calibration benchmark). Each cell is
the RMSE of a, b (and c) against the generating values, averaged over three replications.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))

from irtcat.irt.calibration import CalibModel, CalibrationWarning, Priors, ResponseData, calibrate
from irtcat.irt.datagen import Guessing, Slopes, generate_parameters, generate_responses


@dataclass(frozen=True)
class Design:
    name: str
    model: CalibModel
    slopes: Slopes
    guessing: Guessing
    cat: bool
    persons: int
    items: int


DESIGNS = [
    Design("3PL c~U(0,.25) complete", "3PL", "normal", "uniform", False, 5000, 40),
    Design("3PL c~Beta(5,17) complete", "3PL", "normal", "beta", False, 5000, 40),
    Design("2PL a~N(1.2,.25) complete", "2PL", "normal", "beta", False, 3000, 40),
    Design("2PL a~LogN(0,.25) complete", "2PL", "lognormal", "beta", False, 3000, 40),
    Design("2PL a~U(.5,2.5) complete", "2PL", "uniform", "beta", False, 3000, 40),
    Design("2PL a~N(1.2,.25) CAT", "2PL", "normal", "beta", True, 10000, 200),
    Design("2PL a~LogN(0,.25) CAT", "2PL", "lognormal", "beta", True, 10000, 200),
    Design("2PL a~U(.5,2.5) CAT", "2PL", "uniform", "beta", True, 10000, 200),
    Design("3PL c~U(0,.25) CAT", "3PL", "normal", "uniform", True, 10000, 200),
]
REPLICATIONS = (101, 202, 303)
MIRT_NODES = (21, 41)
MIN_SCORED = 300


def data_set(design: Design, seed: int) -> tuple[Any, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Generating parameters and long-format responses of one replication."""
    from irtcat.irt.config import CatConfig
    from irtcat.irt.simulation import simulate
    from irtcat.irt.state import Bank

    params = generate_parameters(design.items, design.model, seed=seed, slopes=design.slopes,
                                 guessing=design.guessing)
    thetas = np.random.default_rng(seed + 1).normal(size=design.persons)
    if not design.cat:
        return params, generate_responses(params, thetas, seed=seed + 2)
    sim = simulate(Bank(params), CatConfig(max_items=30, se_threshold=None), thetas, seed=seed + 2,
                   keep_responses=True)
    assert sim.responses is not None
    return params, sim.responses


def fit_ours(data: ResponseData, model: CalibModel, priors: Priors | None) -> tuple[dict[str, np.ndarray], float]:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        r = calibrate(data, model, priors=priors)
    return {"a": r.a, "b": r.b, "c": r.c}, time.perf_counter() - started


def fit_mirt(person: np.ndarray, item: np.ndarray, x: np.ndarray, n_persons: int, used: np.ndarray,
             model: CalibModel, nodes: int) -> tuple[dict[str, np.ndarray], float] | None:
    """mirt's EM without priors (its only setting) on the items that have responses."""
    try:
        import mirt  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    remap = np.full(used.size and int(used.max()) + 1, -1)
    remap[used] = np.arange(used.size)
    matrix = np.full((n_persons, used.size), -1, dtype=np.int64)
    matrix[person, remap[item]] = x
    started = time.perf_counter()
    fit = mirt.fit_mirt(matrix, model=model, n_quadpts=nodes, compute_standard_errors=False)
    seconds = time.perf_counter() - started
    theirs = fit.model.parameters
    out = {}
    for key, name in (("a", "discrimination"), ("b", "difficulty"), ("c", "guessing")):
        full = np.full(int(used.max()) + 1, np.nan)
        if name in theirs:
            full[used] = np.ravel(theirs[name])
        out[key] = full
    return out, seconds


def study(candidates: dict[str, Priors | None], designs: list[Design] = DESIGNS,
          replications: tuple[int, ...] = REPLICATIONS, with_mirt: bool = True) -> list[dict[str, Any]]:
    """One row per design and method: mean RMSE of a, b, c over the replications, and seconds."""
    rows: list[dict[str, Any]] = []
    for design in designs:
        sums: dict[str, dict[str, float]] = {}
        for seed in replications:
            params, (person, item, x) = data_set(design, seed)
            counts = np.bincount(item, minlength=design.items)
            scored = counts >= MIN_SCORED
            used = np.flatnonzero(counts)
            data = ResponseData.from_long(person, item, x, n_persons=design.persons, n_items=design.items)
            fits: dict[str, tuple[dict[str, np.ndarray], float]] = {
                name: fit_ours(data, design.model, priors) for name, priors in candidates.items()}
            if with_mirt:
                for nodes in MIRT_NODES:
                    theirs = fit_mirt(person, item, x, design.persons, used, design.model, nodes)
                    if theirs is not None:
                        fits[f"mirt {nodes} nodes"] = ({k: v[: design.items] if v.size >= design.items
                                                        else np.pad(v, (0, design.items - v.size))
                                                        for k, v in theirs[0].items()}, theirs[1])
            for name, (est, seconds) in fits.items():
                cell = sums.setdefault(name, {"seconds": 0.0})
                cell["seconds"] += seconds / len(replications)
                for key in ("a", "b", "c") if design.model == "3PL" else ("a", "b"):
                    truth = getattr(params, key)
                    err = float(np.sqrt(np.mean((est[key][scored] - truth[scored]) ** 2)))
                    cell[key] = cell.get(key, 0.0) + err / len(replications)
        rows.extend({"design": design.name, "method": name, **cell} for name, cell in sums.items())
    return rows


def coverage(model: CalibModel, priors: Priors | None, replications: int = 400, persons: int = 500,
             items: int = 10, seed: int = 1000) -> dict[str, float]:
    """Share of 95% intervals b +- 1.96 SE(b) (and a +- 1.96 SE(a)) that cover the true values
    over ``replications`` data sets of one bank; the mean SE(b) beside the SD of the b errors."""
    params = generate_parameters(items, model, seed=seed)
    hits_b, hits_a, errors, ses = [], [], [], []
    for rep in range(replications):
        thetas = np.random.default_rng(seed + 1 + rep).normal(size=persons)
        data = ResponseData.from_long(*generate_responses(params, thetas, seed=seed + 100_000 + rep))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            r = calibrate(data, model, priors=priors)
        hits_b.append(np.abs(r.b - params.b) <= 1.959964 * r.se_b)
        if model != "1PL":
            hits_a.append(np.abs(r.a - params.a) <= 1.959964 * r.se_a)
        errors.append(r.b - params.b)
        ses.append(r.se_b)
    out = {"coverage_b": float(np.mean(hits_b)), "mean_se_b": float(np.mean(ses)),
           "sd_error_b": float(np.mean(np.std(errors, axis=0)))}
    if hits_a:
        out["coverage_a"] = float(np.mean(hits_a))
    return out


def coverage_study(replications: int = 400) -> dict[str, Any]:
    """The coverage benchmark: 500 persons x 10 items, per model, priors off and default."""
    out: dict[str, Any] = {}
    for model, label, priors in (("1PL", "none", Priors()), ("2PL", "none", Priors()), ("2PL", "default", None),
                                 ("3PL", "default", None)):
        for key, value in coverage(model, priors, replications).items():  # type: ignore[arg-type]
            out[f"coverage_{model}_{label}_{key}"] = value
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| design | method | RMSE a | RMSE b | RMSE c | seconds |", "|---|---|---|---|---|---|"]
    for row in rows:
        c = f"{row['c']:.4f}" if "c" in row else ""
        lines.append(f"| {row['design']} | {row['method']} | {row['a']:.4f} | {row['b']:.4f} | {c} | "
                     f"{row['seconds']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(study({"default": None, "none": Priors()})))
