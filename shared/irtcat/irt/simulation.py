"""Monte Carlo CAT simulation (what catsim does), vectorised across examinees.

Every simulee runs the same :mod:`irtcat.irt.cat` step as the live pipeline; responses are
drawn from the bank's own model at the simulee's true theta.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from .cat import record_answer
from .config import CatConfig
from .exposure import draw_ineligible, exposure_eligibility
from .model import FloatArray, prob
from .polytomous import draw_responses
from .selection import select_next
from .state import Bank, CatState
from .stopping import check_stop


@dataclass
class SimulationResult:
    """Per-simulee outcomes and per-item exposure of one simulation run."""

    true_theta: FloatArray
    theta: FloatArray
    se: FloatArray
    length: np.ndarray
    stop_reason: np.ndarray
    exposure: FloatArray  # share of simulees that were served each item
    selected: np.ndarray  # how often each item won selection before any exposure lottery
    trajectories: FloatArray  # (simulees, max_items + 1) theta after each scored answer, NaN pad
    seconds: float = 0.0
    # every response given, pretest included, in long format: (person, item, response)
    responses: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    # the items each simulee was served, in order (pretest included), -1 padded
    administered: np.ndarray | None = None
    # shadow-test selection: per simulee, the blueprint rules that gave way and by how much
    relaxed: dict[int, dict[str, float]] = field(default_factory=dict)
    # item eligibility: the share of simulees for whom each item was eligible (None: no draw)
    eligible: FloatArray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self, bank: Bank) -> dict[str, Any]:
        """Length, bias, RMSE, correlation, conditional RMSE by theta decile, exposure, stops.

        Exposure chi-square (Chang & Ying 1999): sum_i (r_i - L/N)^2 / (L/N) over operational
        items, with r_i the exposure rate, L the mean test length and N the number of items.
        """
        err = self.theta - self.true_theta
        ops = bank.operational
        rates = self.exposure[ops]
        n = self.theta.size
        served = rates * n  # how many examinees saw each item
        # overlap rate (Way 1998; Chen, Ang & Spray 2003): the expected share of one examinee's
        # items that another random examinee also saw, sum_i c_i (c_i - 1) / (n (n - 1) L)
        overlap = (float(np.sum(served * (served - 1)) / (n * (n - 1) * self.length.mean()))
                   if n > 1 and self.length.mean() > 0 else 0.0)
        expected = self.length.mean() / max(int(ops.sum()), 1)
        deciles = np.quantile(self.true_theta, np.linspace(0, 1, 11))
        bins = np.clip(np.searchsorted(deciles, self.true_theta, side="right") - 1, 0, 9)
        cond = [
            {
                "decile": int(k + 1),
                "theta_low": float(deciles[k]),
                "theta_high": float(deciles[k + 1]),
                "rmse": float(np.sqrt(np.mean(err[bins == k] ** 2))) if np.any(bins == k) else None,
                "n": int(np.sum(bins == k)),
            }
            for k in range(10)
        ]
        corr = (
            float(np.corrcoef(self.theta, self.true_theta)[0, 1])
            if self.theta.size > 1 and np.std(self.theta) > 0 and np.std(self.true_theta) > 0
            else None
        )
        return {
            "examinees": int(self.theta.size),
            "mean_length": float(self.length.mean()),
            "sd_length": float(self.length.std()),
            "bias": float(err.mean()),
            "rmse": float(np.sqrt(np.mean(err**2))),
            "mean_se": float(self.se.mean()),
            "correlation": corr,
            "conditional_rmse": cond,
            "max_exposure": float(rates.max()) if rates.size else 0.0,
            "never_used_share": float(np.mean(rates == 0)) if rates.size else 0.0,
            "overlap_rate": overlap,
            "exposure_chi2": float(np.sum((rates - expected) ** 2) / expected) if expected else 0.0,
            "stop_reasons": dict(Counter(str(r) for r in self.stop_reason)),
            "seconds": self.seconds,
        }


def simulate(
    bank: Bank,
    config: CatConfig,
    true_theta: FloatArray,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    keep_responses: bool = False,
) -> SimulationResult:
    """Run every simulee through the adaptive test; ``progress(k)`` is told of k finished.

    With ``keep_responses`` the result carries every response in long format (the data a
    calibration needs: adaptive, sparse, not missing at random). Answers draw from a stream of
    their own, so two policies run with one seed compare on common random numbers.
    """
    import time

    started = time.perf_counter()
    # answers draw from their own stream, apart from the selection's lotteries and draws: two
    # policies simulated with one seed give simulee j the same uniform at the same step (common
    # random numbers, Law 2015 ch. 11), so a difference between them is measured with less noise
    rng, answers = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    true_theta = np.asarray(true_theta, dtype=np.float64)
    n = true_theta.size
    state = CatState.start(n, bank, config)
    eligible = None
    if n and exposure_eligibility(bank, config):
        draws = np.array([draw_ineligible(bank.exposure_k, rng) for _ in range(n)])
        state.ineligible.update(enumerate(draws))
        eligible = 1.0 - draws.mean(axis=0)
    reason = np.full(n, "", dtype=object)
    traj = np.full((n, config.max_items + 1), np.nan)
    traj[:, 0] = state.theta
    selected = np.zeros(len(bank), dtype=np.int64)
    active = np.arange(n)
    log: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    order = np.full((n, config.max_items + len(config.pretest_positions)), -1, dtype=np.int64)
    while active.size:
        items = select_next(state, bank, config, active, rng, selected)
        none_left = items < 0
        if none_left.any():
            reason[active[none_left]] = "bank_exhausted"
            if progress:
                progress(int(none_left.sum()))
            active, items = active[~none_left], items[~none_left]
            if active.size == 0:
                break
        p = prob(true_theta[active], bank.params.subset(items))
        x = (answers.random(active.size) < p).astype(np.int64)
        if bank.poly is not None:  # partial-credit items answer in a category
            where, is_poly = bank.poly_positions(items)
            if is_poly.any():
                x[is_poly] = draw_responses(true_theta[active[is_poly]], bank.poly.subset(where[is_poly]), answers)
        record_answer(state, bank, config, active, items, x)
        slot = state.n_served[active] - 1
        fits = slot < order.shape[1]
        order[active[fits], slot[fits]] = items[fits]
        if keep_responses:
            log.append((active.copy(), items.copy(), x.copy()))
        traj[active, state.n_scored[active]] = state.theta[active]
        stop = check_stop(state, bank, config, active)
        done = stop != ""
        reason[active[done]] = stop[done]
        if progress and done.any():
            progress(int(done.sum()))
        active = active[~done]
    exposure = state.administered.mean(axis=0)
    return SimulationResult(
        true_theta=true_theta,
        theta=state.theta,
        se=state.se,
        length=state.n_scored.copy(),
        stop_reason=reason,
        exposure=exposure,
        selected=selected,
        trajectories=traj,
        seconds=time.perf_counter() - started,
        responses=tuple(np.concatenate(col) for col in zip(*log, strict=True))  # type: ignore[arg-type]
        if keep_responses and log else None,
        administered=order,
        relaxed=dict(state.relaxed),
        eligible=eligible,
    )


def eligibility_probabilities(
    bank: Bank,
    config: CatConfig,
    target: float = 0.25,
    examinees: int = 600,
    batch: int = 50,
    seed: int = 0,
    fading: float = 0.8,
    initial: FloatArray | None = None,
    burn_in: int | None = None,
) -> tuple[FloatArray, list[float]]:
    """Item eligibility probabilities for shadow-test selection (van der Linden & Veldkamp 2004).

    Every examinee draws, once, which items are eligible for their test (item i with probability
    e_i); the shadow test prices the others out. With alpha_i the examinees who were given item i
    and epsilon_i those for whom it was eligible, P(A_i) = P(A_i | E_i) e_i <= r holds when

        e_i = min(1, r * epsilon_i / alpha_i),

    the paper's self-adaptive update, applied here after each ``batch`` of simulees. Both counts
    fade by ``fading`` per batch over the first ``burn_in`` simulees (default: half of them), so
    that the batches run before the probabilities settled are forgotten, and accumulate unfaded
    after it, so that the final probabilities rest on every later simulee. epsilon_i counts the
    realised draws (the ratio alpha_i / epsilon_i estimates P(A_i | E_i) with less noise than
    dividing by the batch size times e_i). The simulees' thetas are stratified: each batch takes
    one theta from each of ``batch`` equal-probability slices of the prior, which removes the
    part of a rate's sampling noise that comes from where the thetas fell (about half its
    variance for the popular items of a max-info test). One pass, not rounds of full
    simulations: the shadow test solves an integer program per selection. ``initial``: the
    probabilities to start from (default 1; the Sympson-Hetter parameters of max-info are a
    closer start). Returns the final probabilities and each batch's largest exposure rate.
    """
    if not 0 < target <= 1:
        raise ValueError("the exposure target must be in (0, 1]")
    burn_in = examinees // 2 if burn_in is None else burn_in
    rng = np.random.default_rng(seed)
    e = np.ones(len(bank)) if initial is None else np.asarray(initial, np.float64).copy()
    given = np.zeros(len(bank))
    eligible = np.zeros(len(bank))
    history: list[float] = []
    for k, start in enumerate(range(0, examinees, batch)):
        size = min(batch, examinees - start)
        result = simulate(bank.with_exposure_k(e), config, stratified_normal(rng, size, config.prior.mean,
                                                                             config.prior.sd), seed=seed + k + 1)
        history.append(float(result.exposure[bank.operational].max()))
        keep = fading if start < burn_in else 1.0
        given = keep * given + result.exposure * size
        eligible = keep * eligible + (e if result.eligible is None else result.eligible) * size
        e = np.where(given > 0, np.minimum(1.0, target * eligible / np.maximum(given, 1e-12)), 1.0)
    return e, history


def stratified_normal(rng: np.random.Generator, size: int, mean: float = 0.0, sd: float = 1.0) -> FloatArray:
    """``size`` draws from N(mean, sd) stratified on probability: one uniform point in each of
    ``size`` equal slices of (0, 1), in random order, through the normal quantile function."""
    quantile = NormalDist(mean, sd).inv_cdf
    u = (rng.permutation(size) + rng.random(size)) / size
    return np.array([quantile(min(max(p, 1e-12), 1 - 1e-12)) for p in u], dtype=np.float64)


def sympson_hetter_parameters(
    bank: Bank,
    config: CatConfig,
    target: float = 0.25,
    examinees: int = 2000,
    iterations: int = 12,
    seed: int = 0,
) -> tuple[FloatArray, list[float]]:
    """Exposure-control parameters K_i by iterated simulation (Sympson & Hetter 1985).

    Each round simulates ``examinees`` from the prior with the current K and measures each
    item's exposure P(A_i) = P(S_i) K_i. The classic update K_i = min(1, r / P(S_i)) stalls
    above the target when controlling one item pushes selections onto its neighbours, so the
    update here is the multiplicative fixed point of the same condition,
    K_i <- min(1, K_i r / P(A_i)), which lowers K where exposure is over r and gives back
    where it is under. Returns the K of the round with the lowest maximum exposure, and the
    maximum exposure rate seen in each round.
    """
    if not 0 < target <= 1:
        raise ValueError("the exposure target must be in (0, 1]")
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    k = np.ones(len(bank))
    best_k, best = k, np.inf
    history: list[float] = []
    sh_config = replace(config, sympson_hetter=True)
    for round_ in range(iterations):
        trial = bank.with_exposure_k(k)
        thetas = rng.normal(config.prior.mean, config.prior.sd, examinees)
        result = simulate(trial, sh_config, thetas, seed=seed + round_ + 1)
        exposure = result.exposure
        worst = float(exposure[bank.operational].max())
        history.append(worst)
        if worst < best:
            best_k, best = k, worst
        k = np.minimum(1.0, k * target / np.maximum(exposure, 1e-12))
        k = np.where(exposure > 0, k, 1.0)
    return best_k, history
