"""Benchmarks of calibration: recovery, speed and memory; against mirt; partial credit; mixed
banks; the managed job; the priors study; SE coverage."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from harness import ROOT


def calibration_complete_data(
    model: str, n_items: int, n_persons: int, seed: int
) -> tuple[Any, tuple[np.ndarray, ...]]:
    """A complete data set of the calibration benchmarks: parameters (``seed``), N(0, 1) abilities
    (``seed + 1``) and long-format responses (``seed + 2``)."""
    from irtcat.irt.datagen import generate_parameters, generate_responses

    params = generate_parameters(n_items, model, seed=seed)  # type: ignore[arg-type]
    thetas = np.random.default_rng(seed + 1).normal(size=n_persons)
    return params, generate_responses(params, thetas, seed=seed + 2)


def calibration_cat_data(selection: str) -> tuple[Any, np.ndarray, tuple[np.ndarray, ...]]:
    """The CAT data set of the calibration benchmarks: a 300-item 2PL bank, 20,000 examinees, 30
    items each under ``selection`` ("max_info": the default policy, or "a_stratified")."""
    from irtcat.irt.config import CatConfig
    from irtcat.irt.datagen import generate_parameters
    from irtcat.irt.simulation import simulate
    from irtcat.irt.state import Bank

    params = generate_parameters(300, "2PL", seed=7)
    thetas = np.random.default_rng(8).normal(size=20000)
    config = (CatConfig(max_items=30, se_threshold=None) if selection == "max_info"
              else CatConfig(selection=selection, max_items=30, se_threshold=None))  # type: ignore[arg-type]
    sim = simulate(Bank(params), config, thetas, seed=9, keep_responses=True)
    assert sim.responses is not None
    return params, thetas, sim.responses


def bench_calibration() -> dict[str, Any]:
    """The calibration targets of the calibration issue, on data generated here."""
    import resource

    from irtcat.irt.calibration import ResponseData, calibrate
    from irtcat.irt.datagen import generate_parameters, generate_responses

    def rmse(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.sqrt(np.mean((x - y) ** 2)))

    out: dict[str, Any] = {}
    p, responses = calibration_complete_data("2PL", 100, 5000, seed=1)
    data = ResponseData.from_long(*responses)
    t = time.perf_counter()
    r = calibrate(data, "2PL")
    out.update({"calib_2pl_5000x100_s": time.perf_counter() - t, "calib_2pl_rmse_a": rmse(r.a, p.a),
                "calib_2pl_rmse_b": rmse(r.b, p.b), "calib_2pl_cycles": r.iterations})
    p3, responses = calibration_complete_data("3PL", 50, 10000, seed=4)
    data = ResponseData.from_long(*responses)
    t = time.perf_counter()
    r = calibrate(data, "3PL")
    out.update({"calib_3pl_10000x50_s": time.perf_counter() - t, "calib_3pl_rmse_a": rmse(r.a, p3.a),
                "calib_3pl_rmse_b": rmse(r.b, p3.b), "calib_3pl_rmse_c": rmse(r.c, p3.c),
                "calib_3pl_cycles": r.iterations})
    pc, thetas, responses = calibration_cat_data("max_info")
    data = ResponseData.from_long(*responses, n_items=300)
    t = time.perf_counter()
    r = calibrate(data, "2PL")  # pairwise start from the responses alone: never the truth
    est = r.estimated
    well = est & (r.n_responses >= 300)
    mcar = ResponseData.from_long(*generate_responses(pc, thetas, seed=10, items_per_person=30))
    control = calibrate(mcar, "2PL")
    out.update({"calib_cat_20000x300_s": time.perf_counter() - t - control.seconds,
                "calib_cat_items_estimated": int(est.sum()),
                "calib_cat_rmse_b_estimated": rmse(r.b[est], pc.b[est]),
                "calib_cat_rmse_b_n300": rmse(r.b[well], pc.b[well]),
                "calib_cat_items_n300": int(well.sum()),
                "calib_mcar_rmse_b_same_items": rmse(control.b[well], pc.b[well]),
                "calib_cat_cycles": r.iterations})
    # the same bank under a-stratified selection: adaptive (every item ~50% correct) but the
    # whole bank is used, the design the CAT figures describe
    _, _, responses = calibration_cat_data("a_stratified")
    data = ResponseData.from_long(*responses, n_items=300)
    t = time.perf_counter()
    r = calibrate(data, "2PL")
    est = r.estimated
    out.update({"calib_cat_astrat_20000x300_s": time.perf_counter() - t,
                "calib_cat_astrat_items_estimated": int(est.sum()),
                "calib_cat_astrat_rmse_b": rmse(r.b[est], pc.b[est]),
                "calib_cat_astrat_rmse_a": rmse(r.a[est], pc.a[est]),
                "calib_cat_astrat_cycles": r.iterations})
    pm = generate_parameters(1000, "2PL", seed=11)
    person = np.repeat(np.arange(100_000), 10)
    item = np.random.default_rng(12).integers(0, 1000, person.size)
    # unique items per person: redraw duplicates
    key = person * 1000 + item
    _, first = np.unique(key, return_index=True)
    person, item = person[np.sort(first)], item[np.sort(first)]
    th = np.random.default_rng(13).normal(size=100_000)
    from irtcat.irt.model import prob

    x = (np.random.default_rng(14).random(person.size) < prob(th[person], pm.subset(item))).astype(np.int64)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    data = ResponseData.from_long(person, item, x, n_persons=100_000, n_items=1000)
    r = calibrate(data, "2PL")
    out.update({"calib_1m_responses_s": time.perf_counter() - t, "calib_1m_cycles": r.iterations,
                "calib_1m_responses": int(person.size), "calib_1m_rmse_b": rmse(r.b, pm.b),
                "calib_1m_peak_rss_mb": max(rss0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024})
    return out


def bench_calibration_peers() -> dict[str, Any]:
    """Our calibration and the PyPI ``mirt`` on the very same data sets, in the same run.

    The calibration issue quotes mirt's accuracy on data sets of its own; accuracy depends on
    the generating parameters, so the fair comparison is both estimators on identical data.
    mirt runs with its defaults (EM, 21 nodes, no priors) and with 41 nodes.
    """
    from irtcat.irt.calibration import ResponseData, calibrate

    try:
        import mirt  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return {"mirt": "not installed (pip install mirt to compare)"}
    out: dict[str, Any] = {"mirt_version": getattr(mirt, "__version__", "?")}

    def both(label: str, params: Any, person: np.ndarray, item: np.ndarray, x: np.ndarray,
             n_persons: int, model: str, scored: np.ndarray | None = None) -> None:
        """Fit both; RMSEs over the ``scored`` items (all by default)."""
        mask = np.ones(len(params), bool) if scored is None else scored

        def rmse(x: Any, y: np.ndarray) -> float:
            return float(np.sqrt(np.mean((np.ravel(x)[mask] - y[mask]) ** 2)))

        keys = ("a", "b", "c") if model == "3PL" else ("a", "b")
        t = time.perf_counter()
        ours = calibrate(ResponseData.from_long(person, item, x, n_persons=n_persons,
                                                n_items=len(params)), model)  # type: ignore[arg-type]
        out[f"peers_{label}_ours_s"] = time.perf_counter() - t
        for k in keys:
            out[f"peers_{label}_ours_rmse_{k}"] = rmse(getattr(ours, k), getattr(params, k))
        matrix = np.full((n_persons, len(params)), -1, dtype=np.int64)  # negative = not answered
        matrix[person, item] = x
        for nodes in (21, 41):
            t = time.perf_counter()
            fit = mirt.fit_mirt(matrix, model=model, n_quadpts=nodes, compute_standard_errors=False)
            out[f"peers_{label}_mirt{nodes}_s"] = time.perf_counter() - t
            theirs = fit.model.parameters
            names = {"a": "discrimination", "b": "difficulty", "c": "guessing"}
            for k in keys:
                out[f"peers_{label}_mirt{nodes}_rmse_{k}"] = rmse(theirs[names[k]], getattr(params, k))

    p2, responses = calibration_complete_data("2PL", 100, 5000, seed=1)
    both("2pl_5000x100", p2, *responses, n_persons=5000, model="2PL")
    for seed in (4, 11, 12, 13):  # seed 4 is the calibration benchmark's data set
        p3, responses = calibration_complete_data("3PL", 50, 10000, seed=seed)
        both(f"3pl_10000x50_seed{seed}", p3, *responses, n_persons=10000, model="3PL")
    pc, _, responses = calibration_cat_data("a_stratified")
    both("cat_astrat_20000x300", pc, *responses, n_persons=20000, model="2PL")
    pc, _, (person, item, x) = calibration_cat_data("max_info")
    counts = np.bincount(item, minlength=300)
    used = np.flatnonzero(counts)  # items the max-info CAT never served cannot be estimated
    remap = np.full(300, -1)
    remap[used] = np.arange(used.size)
    # scored where the calibration benchmark scores it: items with >= 300 responses
    both("cat_maxinfo_20000x300", pc.subset(used), person, remap[item], x, n_persons=20000, model="2PL",
         scored=counts[used] >= 300)
    out["peers_cat_maxinfo_items_used"] = int(used.size)
    out["peers_cat_maxinfo_items_scored"] = int((counts[used] >= 300).sum())
    return out

def partial_credit_data(model: str, persons: int, items: int, seed: int,
                        answered: float = 1.0) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Items with 4 categories (log a ~ N(0.2, 0.25^2); GPCM steps ~ N(0, 1); GRM b_1 ~ N(-1, 0.5^2)
    and increments ~ U(0.6, 1.2)), theta ~ N(0, 1), each person answering a random ``answered``
    share of the items: (truth, person, item, category)."""
    from irtcat.irt.polytomous import PolytomousItems, draw_responses

    rng = np.random.default_rng(seed)
    a = np.exp(rng.normal(0.2, 0.25, items))
    if model == "GRM":
        b = np.cumsum(np.column_stack([rng.normal(-1.0, 0.5, items), rng.uniform(0.6, 1.2, (items, 2))]), axis=1)
    else:
        b = rng.normal(0.0, 1.0, (items, 3))
    truth = PolytomousItems.build([model] * items, a, b.tolist())
    theta = rng.normal(size=persons)
    person = np.repeat(np.arange(persons), items)
    item = np.tile(np.arange(items), persons)
    keep = rng.random(person.size) < answered
    person, item = person[keep], item[keep]
    return truth, person, item, draw_responses(theta[person], truth.subset(item), rng)


def partial_credit_cat(truth: Any, persons: int, seed: int, length: int = 10) -> tuple[np.ndarray, ...]:
    """Responses of ``persons`` simulees (theta ~ N(0, 1)) to a 10-item max-info CAT (EAP) on
    the partial-credit bank ``truth``: the adaptive, not-at-random sparse design."""
    from dataclasses import replace

    from irtcat.domain.policy import TestPolicy
    from irtcat.irt.model import ItemParameters
    from irtcat.irt.simulation import simulate
    from irtcat.irt.state import Bank

    bank = Bank(ItemParameters.from_arrays(b=np.zeros(len(truth))), poly=truth, poly_index=np.arange(len(truth)))
    config = replace(TestPolicy().cat_config(), sympson_hetter=False, se_threshold=None, max_items=length,
                     min_items=length)
    thetas = np.random.default_rng(seed + 1).normal(size=persons)
    result = simulate(bank, config, thetas, seed=seed, keep_responses=True)
    assert result.responses is not None
    return result.responses


def bench_partial_credit_peers() -> dict[str, Any]:
    """GRM and GPCM calibration, ours (default priors, 61 nodes) beside the PyPI mirt at 21
    (its default), 41 and 61 nodes on the same data: 5,000 x 40 items with 4 categories,
    complete, and a sparse design where each person answers a random quarter of the items.
    and an adaptive one (a 10-item max-info CAT per person). Seconds without standard errors for
    both (ours' SEs timed apart); RMSE of a and of the thresholds."""
    from irtcat.irt.calibration import CategoryData, calibrate_polytomous

    try:
        import mirt  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return {"mirt": "not installed (pip install mirt to compare)"}
    out: dict[str, Any] = {"mirt_version": getattr(mirt, "__version__", "?")}
    for model, step_name in (("GRM", "thresholds"), ("GPCM", "steps")):
        for design, share in (("complete", 1.0), ("quarter", 0.25), ("cat", 0.0)):
            truth, person, item, x = partial_credit_data(model, 5000, 40, seed=21, answered=share or 1.0)
            label = f"pc_{model.lower()}_{design}"
            if design == "cat":
                # the CAT leaves items unused or thin: both estimators get the items with >= 100
                # responses in every category (as the dichotomous CAT comparison does)
                person, item, x = partial_credit_cat(truth, 5000, seed=21)
                counts = np.zeros((40, 4), dtype=np.int64)
                np.add.at(counts, (item, x), 1)
                kept = np.flatnonzero((counts.sum(axis=1) >= 100) & (counts.min(axis=1) > 0))
                rows = np.isin(item, kept)
                remap = np.full(40, -1)
                remap[kept] = np.arange(kept.size)
                person, item, x, truth = person[rows], remap[item[rows]], x[rows], truth.subset(kept)
                out[f"{label}_items"] = int(kept.size)
            n_items = len(truth)
            data = CategoryData.from_long(person, item, x, n_persons=5000, n_items=n_items)
            out[f"{label}_responses"] = int(person.size)
            t = time.perf_counter()
            ours = calibrate_polytomous(data, model, standard_errors=False)
            out[f"{label}_ours_s"] = time.perf_counter() - t
            out[f"{label}_ours_rmse_a"] = float(np.sqrt(np.mean((ours.a - truth.a) ** 2)))
            out[f"{label}_ours_rmse_b"] = float(np.sqrt(np.nanmean((ours.thresholds - truth.thresholds) ** 2)))
            out[f"{label}_ours_cycles"] = ours.cycles
            t = time.perf_counter()
            calibrate_polytomous(data, model, standard_errors=True)
            out[f"{label}_ours_with_se_s"] = time.perf_counter() - t
            matrix = np.full((5000, n_items), -1, dtype=np.int64)
            matrix[person, item] = x
            for nodes in (21, 41, 61):
                t = time.perf_counter()
                fit = mirt.fit_mirt(matrix, model=model, n_quadpts=nodes, compute_standard_errors=False)
                out[f"{label}_mirt{nodes}_s"] = time.perf_counter() - t
                theirs = fit.model.parameters
                out[f"{label}_mirt{nodes}_rmse_a"] = float(np.sqrt(np.mean(
                    (np.ravel(theirs["discrimination"]) - truth.a) ** 2)))
                out[f"{label}_mirt{nodes}_rmse_b"] = float(np.sqrt(np.mean(
                    (np.asarray(theirs[step_name]) - truth.thresholds) ** 2)))
    return out

def bench_mixed_calibration(persons: int = 5000, seeds: tuple[int, ...] = tuple(range(1, 13))) -> dict[str, Any]:
    """One EM for a mixed bank against each family calibrated alone on its own answers (what a
    bank of right/wrong and partial-credit items needed before the joint run): 30 3PL items
    (the generated bank's parameters) + 5 GRM + 5 GPCM items with 4 categories, theta ~ N(0, 1);
    complete data, and each person answering a random quarter of the items; 12 samples each.
    RMSE of a and b (thresholds) per family and seconds (without SEs, both): their means, the
    mean ratio joint / alone and in how many samples the joint run's RMSE is the lower."""
    from irtcat.domain.bank import Item
    from irtcat.domain.generate import generate_bank
    from irtcat.irt.calibration import CategoryData, ResponseData, calibrate, calibrate_mixed, calibrate_polytomous
    from irtcat.irt.model import prob
    from irtcat.irt.polytomous import draw_responses

    out: dict[str, Any] = {}
    rows: dict[str, list[float]] = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        base = generate_bank(30, "3PL", seed=seed, with_content=False)
        extra = [Item(item_id=f"g{k}", model="GRM", a=float(np.exp(rng.normal(0.2, 0.25))),
                      b=[float(x) for x in np.cumsum([rng.normal(-1, 0.5), *rng.uniform(0.6, 1.2, 2)])])
                 for k in range(5)]
        extra += [Item(item_id=f"m{k}", model="GPCM", a=float(np.exp(rng.normal(0.2, 0.25))),
                       b=[float(x) for x in rng.normal(0.0, 1.0, 3)]) for k in range(5)]
        engine = base.model_copy(update={"items": [*base.items, *extra], "scale": 1.0}).engine
        assert engine.poly is not None
        theta = rng.normal(size=persons)
        for design, share in (("complete", 1.0), ("quarter", 0.25)):
            person = np.repeat(np.arange(persons), 40)
            item = np.tile(np.arange(40), persons)
            keep = rng.random(person.size) < share
            person, item = person[keep], item[keep]
            x = np.zeros(person.size, dtype=np.int64)
            rw = item < 30
            x[rw] = rng.random(int(rw.sum())) < prob(theta[person[rw]], engine.params.subset(item[rw]))
            x[~rw] = draw_responses(theta[person[~rw]], engine.poly.subset(item[~rw] - 30), rng)
            right_wrong = ResponseData.from_long(person[rw], item[rw], x[rw], persons, 30)
            partial = CategoryData.from_long(person[~rw], item[~rw] - 30, x[~rw], persons, 10)
            models = ["GRM"] * 5 + ["GPCM"] * 5
            t = time.perf_counter()
            joint = calibrate_mixed(right_wrong, partial, model="3PL", partial_models=models, standard_errors=False)
            joint_s = time.perf_counter() - t
            t = time.perf_counter()
            rw_alone = calibrate(right_wrong, "3PL", n_nodes=61)
            pc_alone = calibrate_polytomous(partial, models, standard_errors=False)
            alone_s = time.perf_counter() - t
            assert joint.right_wrong is not None and joint.partial is not None
            for method, rw_fit, pc_fit, seconds in (("joint", joint.right_wrong, joint.partial, joint_s),
                                                    ("alone", rw_alone, pc_alone, alone_s)):
                tag = f"mixed_cal_{design}_{method}"
                values = {
                    "rw_rmse_a": float(np.sqrt(np.mean((rw_fit.a - engine.params.a[:30]) ** 2))),
                    "rw_rmse_b": float(np.sqrt(np.mean((rw_fit.b - engine.params.b[:30]) ** 2))),
                    "pc_rmse_a": float(np.sqrt(np.mean((pc_fit.a - engine.poly.a) ** 2))),
                    "pc_rmse_b": float(np.sqrt(np.nanmean((pc_fit.thresholds - engine.poly.thresholds) ** 2))),
                    "s": seconds}
                for key, value in values.items():
                    rows.setdefault(f"{tag}_{key}", []).append(value)
    for key, values in rows.items():
        out[f"{key}_mean"] = float(np.mean(values))
    for key in [k for k in rows if "_joint_" in k]:
        joint, alone = np.array(rows[key]), np.array(rows[key.replace("_joint_", "_alone_")])
        out[f"{key.replace('_joint_', '_')}_ratio"] = float(np.mean(joint / alone))
        out[f"{key.replace('_joint_', '_')}_joint_lower"] = f"{int(np.sum(joint < alone))} of {joint.size}"
    return out


def bench_calibration_study() -> dict[str, Any]:
    """Default priors vs none vs the PyPI mirt over several generators and designs
    (benchmarks/calibration_study.py); the markdown table goes to stderr."""
    from calibration_study import markdown, study
    from irtcat.irt.calibration import Priors

    rows = study({"default": None, "none": Priors()})
    print(markdown(rows), file=sys.stderr)
    out: dict[str, Any] = {}
    for row in rows:
        label = f"study_{row['design']}_{row['method']}".replace(" ", "_")
        for key in ("a", "b", "c", "seconds"):
            if key in row:
                out[f"{label}_{key if key == 'seconds' else 'rmse_' + key}"] = row[key]
    return out


def bench_calibration_coverage() -> dict[str, Any]:
    """95% interval coverage of the observed-information SEs (benchmarks/calibration_study.py)."""
    from calibration_study import coverage_study

    return coverage_study()

def bench_calibration_job(records: int = 1_000_000) -> dict[str, Any]:
    """The managed calibration job on ~1M history records and its sharded E-step (own process:
    benchmarks/calibration_job.py)."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "calibration_job.py"), str(records)],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def bench_priors_study() -> dict[str, Any]:
    """Which 3PL default priors hold off their own generator: candidates against no priors over 18
    generator cells at two sample sizes, some held out of the choice (benchmarks/priors_study.py)."""
    from priors_study import study

    return study()


BENCHES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "calibration": lambda a: bench_calibration(),
    "calibration_peers": lambda a: bench_calibration_peers(),
    "calibration_job": lambda a: bench_calibration_job(),
    "calibration_study": lambda a: bench_calibration_study(),
    "partial_credit_peers": lambda a: bench_partial_credit_peers(),
    "mixed_calibration": lambda a: bench_mixed_calibration(),
    "calibration_coverage": lambda a: bench_calibration_coverage(),
    "priors_study": lambda a: bench_priors_study(),
}
