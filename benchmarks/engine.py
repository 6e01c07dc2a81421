"""Benchmarks of the adaptive engine: the theta update, item selection, whole simulated tests."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from harness import median_us


def bench_eap_update() -> dict[str, Any]:
    """One answer's EAP theta update, and recording an answer in the engine's state (median µs)."""
    from irtcat.irt.cat import record_answer
    from irtcat.irt.config import CatConfig
    from irtcat.irt.datagen import generate_parameters
    from irtcat.irt.estimation import eap_point
    from irtcat.irt.selection import select_next
    from irtcat.irt.state import Bank, CatState

    bank = Bank(generate_parameters(500, "3PL", seed=1))
    cfg = CatConfig(randomesque=1, se_threshold=None, max_items=40)
    state = CatState.start(1, bank, cfg)
    row = np.array([0])
    rng = np.random.default_rng(0)
    for _ in range(30):
        item = select_next(state, bank, cfg, row, rng)
        record_answer(state, bank, cfg, row, item, np.array([1]))
    table = bank.loglik_table(cfg.quadrature)
    nodes, nodes_sq = cfg.quadrature.nodes, cfg.quadrature.nodes_sq
    log_post = state.log_post[0].copy()
    item = int(select_next(state, bank, cfg, row, rng)[0])

    def incremental() -> None:
        eap_point(log_post + table[item, 1], nodes, nodes_sq)

    def full_step() -> None:
        s = CatState(state.theta.copy(), state.se.copy(), state.theta_before.copy(), state.log_post.copy(),
                     state.administered, state.blocked, state.scored_items.copy(), state.scored_resp.copy(),
                     state.n_scored.copy(), state.n_served.copy(), state.area_counts.copy())
        record_answer(s, bank, cfg, row, np.array([item]), np.array([1]))

    return {"eap_update_us": median_us(incremental), "record_answer_us": median_us(full_step, 1000)}


def bench_max_info() -> dict[str, Any]:
    """One selection for one examinee on a 10,000-item 3PL bank: the exact pruned max-info scan,
    and the full scan that priced information needs."""
    from irtcat.irt.config import CatConfig
    from irtcat.irt.datagen import generate_parameters
    from irtcat.irt.selection import select_next
    from irtcat.irt.state import Bank, CatState

    bank = Bank(generate_parameters(10_000, "3PL", seed=2))
    cfg = CatConfig(randomesque=1)
    state = CatState.start(1, bank, cfg)
    state.administered[0, np.random.default_rng(3).choice(10_000, 30, replace=False)] = True
    state.theta[0] = 0.4
    row = np.array([0])
    rng = np.random.default_rng(0)
    out = {"max_info_10k_us": median_us(lambda: select_next(state, bank, cfg, row, rng), 2000)}
    # with allocation prices the pruned scan no longer applies: every item is scored
    from dataclasses import replace

    from irtcat.irt.exposure import allocation_prices

    priced = bank.with_exposure_k(np.ones(len(bank)), allocation_prices(bank, 0.22, 30).prices)
    controlled = replace(cfg, sympson_hetter=True)
    out["max_info_10k_priced_us"] = median_us(lambda: select_next(state, priced, controlled, row, rng), 2000)
    return out


def bench_simulate() -> dict[str, Any]:
    """Whole simulated adaptive tests: time per examinee, RMSE of theta, test length and SE, by
    selection rule, and the same tests in catsim for comparison."""
    from irtcat.irt.config import CatConfig
    from irtcat.irt.datagen import generate_parameters
    from irtcat.irt.simulation import simulate
    from irtcat.irt.state import Bank

    bank = Bank(generate_parameters(500, "3PL", seed=11))
    thetas = np.random.default_rng(12).normal(size=1000)
    out: dict[str, Any] = {}
    for label, cfg in (("maxinfo", CatConfig(randomesque=1)), ("randomesque5", CatConfig())):
        runs = [simulate(bank, cfg, thetas, seed=13) for _ in range(3)]
        best = min(r.seconds for r in runs)
        s = runs[0].summary(bank)
        out[f"simulate_{label}_ms_per_examinee"] = 1000 * best / thetas.size
        out[f"simulate_{label}_rmse"] = s["rmse"]
        out[f"simulate_{label}_mean_length"] = s["mean_length"]
        out[f"simulate_{label}_mean_se"] = s["mean_se"]
    try:
        out.update(_catsim_ratio(bank, thetas, out["simulate_maxinfo_ms_per_examinee"]))
    except ImportError:
        out["catsim"] = "not installed (pip install catsim to compare)"
    return out


def _catsim_ratio(bank: Any, thetas: np.ndarray, ours_ms: float, n: int = 200) -> dict[str, Any]:
    """catsim (same bank, same stopping rule, max-info selection) on the first ``n`` simulees."""
    from catsim.estimation import NumericalSearchEstimator  # type: ignore[import-not-found]
    from catsim.initialization import FixedPointInitializer  # type: ignore[import-not-found]
    from catsim.selection import MaxInfoSelector  # type: ignore[import-not-found]
    from catsim.simulation import Simulator  # type: ignore[import-not-found]
    from catsim.stopping import MinErrorStopper  # type: ignore[import-not-found]

    p = bank.params
    items = np.column_stack([p.a, p.b, p.c, p.d])
    sim = Simulator(items, thetas[:n].copy(), FixedPointInitializer(0.0), MaxInfoSelector(),
                    NumericalSearchEstimator(), MinErrorStopper(0.3, max_items=30))
    t = time.perf_counter()
    sim.simulate()
    catsim_ms = 1000 * (time.perf_counter() - t) / n
    final = np.array([est[-1] for est in sim.estimations])
    lengths = np.array([len(a) for a in sim.administered_items])
    return {"catsim_ms_per_examinee": catsim_ms, "catsim_over_irtcat": catsim_ms / ours_ms,
            "catsim_rmse": float(np.sqrt(np.mean((final - thetas[:n]) ** 2))),
            "catsim_mean_length": float(lengths.mean()), "catsim_examinees": n}

def bench_mixed_simulation(examinees: int = 1000) -> dict[str, Any]:
    """The adaptive step on a mixed bank: 1,000 simulees through a 500-item bank whose items
    cycle 3PL, GRM, GPCM (4 categories), against the same bank all 3PL, the default policy
    without exposure control (EAP, max-info), stopping at SE <= 0.3 (or 30 items) and at a fixed
    30 items; alternating 3 times each, medians, with each bank's caches built first."""
    from dataclasses import replace

    from irtcat.domain.generate import generate_bank, with_partial_credit
    from irtcat.domain.policy import TestPolicy
    from irtcat.irt.simulation import simulate

    plain = generate_bank(500, "3PL", seed=7, with_content=False)
    mixed = with_partial_credit(plain, ["3PL", "GRM", "GPCM"], seed=7)
    base = replace(TestPolicy().cat_config(), sympson_hetter=False)
    thetas = np.random.default_rng(31).normal(size=examinees)
    out: dict[str, Any] = {}
    for stop, config in (("se", base), ("fixed30", replace(base, se_threshold=None))):
        times: dict[str, list[float]] = {"plain": [], "mixed": []}
        summaries: dict[str, dict[str, Any]] = {}
        for _ in range(3):
            for name, bank in (("plain", plain), ("mixed", mixed)):
                engine = bank.model_copy().engine
                engine.information(np.zeros(1))  # the per-bank caches a container builds once
                engine.loglik_table(config.quadrature)
                t = time.perf_counter()
                result = simulate(engine, config, thetas, seed=31)
                times[name].append(time.perf_counter() - t)
                summaries[name] = result.summary(engine)
        for name in times:
            tag = f"mixed_sim_{stop}_{name}"
            out[f"{tag}_ms_per_examinee"] = 1000 * statistics.median(times[name]) / examinees
            out[f"{tag}_rmse"] = summaries[name]["rmse"]
            out[f"{tag}_mean_length"] = summaries[name]["mean_length"]
        out[f"mixed_sim_{stop}_time_ratio"] = statistics.median(times["mixed"]) / statistics.median(times["plain"])
    return out


BENCHES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "eap": lambda a: bench_eap_update(),
    "maxinfo": lambda a: bench_max_info(),
    "simulate": lambda a: bench_simulate(),
    "mixed_simulation": lambda a: bench_mixed_simulation(),
}
