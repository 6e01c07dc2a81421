"""The calibration engine: what a run estimates (:class:`JointModel`: right/wrong items and
partial-credit items, each family with its own M-step), the EM driver (:class:`.em.EMRun`) and
the ways of computing its E-steps. :func:`calibrate`, :func:`calibrate_polytomous` and
:func:`calibrate_mixed` run every E-step in this process, :func:`calibrate_sharded` over shards
of persons (``map_`` may be a process pool's), and the managed calibration job
(:mod:`irtcat.domain.calibration_job`) one Lambda per shard, with :meth:`JointModel.m_step` and
the same :class:`.em.EMRun` between them: so all of them follow the same path to the same
estimates.

* **M-step**: given the posterior weights the expected complete-data log-likelihood separates
  by item, so each family takes its own generalised M-step (:func:`.right_wrong.m_step`,
  :func:`.partial_credit.m_step`). Each raises its items' part of the objective, so the joint
  log-likelihood plus both log priors never falls (Dempster, Laird & Rubin 1977). Each family's
  slope prior is floated to its own mean log slope (:meth:`.priors.Priors.floated`).
* **Fixed items / online calibration**: items held fixed keep their values and inform every
  person's posterior. MEM (Ban et al. 2001; the default) runs full EM cycles in which the
  posterior uses the fixed items and the current pretest estimates; OEM runs one cycle with the
  posterior from the fixed items only. MEM is the default because Ban et al. found it the more
  accurate, and its extra cycles are cheap here.
* **Latent distribution**: ``fixed`` N(0, 1) (default); ``normal`` (mean and variance
  estimated; only meaningful when fixed items anchor the scale); ``histogram``, an empirical
  histogram (Woods 2007) rescaled to mean 0 and variance 1 when nothing anchors the scale.
* **Standard errors** from the observed information of the joint model, inverted whole: the
  right/wrong block by Louis' identity (:func:`.right_wrong.observed_information`), the
  partial-credit block as the Hessian of the marginal log-likelihood
  (:func:`.partial_credit.observed_information`), and the block across the families from the
  persons' score cross-products (:func:`.estep.cross_information`). Without that block each
  family's SEs would be conditional on the other's estimates, too small by up to 14% on a bank
  of 12 right/wrong and 6 partial-credit items.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..model import D_LOGISTIC, FloatArray
from ..polytomous import MODEL_CODES, PolytomousItems
from .data import CalibModel, CategoryData, ExpectedCounts, ItemEstimates, Latent, NodesKind, ResponseData, StartMethod
from .em import CalibrationWarning, EMRun, EMSettings, update_latent
from .estep import PartialAnswers, joint_e_step
from .partial_credit import Layout, category_rmsd, model_names
from .partial_credit import log_prior as pc_log_prior
from .partial_credit import m_step as pc_m_step
from .partial_credit import observed_information as pc_information
from .partial_credit import standard_errors as pc_standard_errors
from .partial_credit import starting_values as pc_starting_values
from .priors import Priors
from .results import JOINT_SE_METHOD, CalibrationResult, MixedResult, PolytomousResult, covariance_of, finish
from .right_wrong import clip_estimates, from_vector, log_prior, m_step, starting_values
from .right_wrong import observed_information as rw_information

Progress = Callable[[int, float, float], None]


@dataclass
class JointModel:
    """What a run estimates, as one vector x = (a, b, c of every right/wrong item; the free
    partial-credit items' :class:`.partial_credit.Layout` vector), and the M-step on it.
    Right/wrong rows that are not ``free`` keep ``base``'s values; ``informed`` marks the rows
    whose slopes inform the floated slope prior (the free ones and those held fixed)."""

    model: CalibModel
    base: ItemEstimates
    free: np.ndarray
    informed: np.ndarray
    priors: Priors
    nodes: FloatArray
    layout: Layout | None = None
    partial_priors: Priors = field(default_factory=Priors)
    scale: float = D_LOGISTIC

    @property
    def n_right_wrong(self) -> int:
        return int(self.base.a.size)

    def split(self, x: FloatArray) -> tuple[ItemEstimates, FloatArray]:
        size = 3 * self.n_right_wrong
        return from_vector(x[:size], self.n_right_wrong), x[size:]

    def join(self, est: ItemEstimates, vec: FloatArray) -> FloatArray:
        return np.concatenate([est.vector(), vec])

    def partial_items(self, vec: FloatArray) -> PolytomousItems:
        assert self.layout is not None
        a, b = self.layout.unpack(vec)
        return PolytomousItems(self.layout.models, a, b, self.scale)

    def project(self, x: FloatArray) -> FloatArray:
        """``x`` moved inside the parameter space; rows not estimated keep their values."""
        est, vec = self.split(x)
        rows = clip_estimates(est, self.model, self.free, self.base)
        return self.join(rows, np.clip(vec, self.layout.lower, self.layout.upper) if self.layout else vec)

    def change(self, before: FloatArray, after: FloatArray) -> float:
        """The largest move of any a, b, c or threshold."""
        size = 3 * self.n_right_wrong
        out = float(np.max(np.abs(after[:size] - before[:size]))) if size and self.free.any() else 0.0
        if self.layout is not None:
            a_old, b_old = self.layout.unpack(before[size:])
            a_new, b_new = self.layout.unpack(after[size:])
            out = max(out, float(np.max(np.abs(a_new - a_old))), float(np.nanmax(np.abs(b_new - b_old))))
        return out

    def right_wrong_priors(self, est: ItemEstimates) -> Priors:
        return self.priors.floated(est.a[self.informed])

    def m_step(self, x: FloatArray, counts: ExpectedCounts) -> tuple[FloatArray, float]:
        """Both families' M-steps from an E-step at ``x``: the image EM(x) and the objective at
        ``x`` (log-likelihood + log priors)."""
        est, vec = self.split(x)
        value = counts.log_likelihood
        new_est, new_vec = est, vec
        if self.n_right_wrong and self.free.any():
            at = self.right_wrong_priors(est)
            new_est = m_step(est, counts.n, counts.r, self.nodes, self.model, at, self.free)
            value += log_prior(est, at, self.model, self.free, self.informed)
        if self.layout is not None:
            assert counts.categories is not None
            a, b = self.layout.unpack(vec)
            current = self.partial_priors.floated(a)
            new_vec = pc_m_step(vec, self.layout, counts.categories, self.nodes, current, self.scale)
            value += pc_log_prior(a, b, current)
        return self.join(new_est, new_vec), value


def run_em(model: JointModel, x0: FloatArray, settings: EMSettings,
           counts_at: Callable[[FloatArray], ExpectedCounts], progress: Progress | None = None) -> EMRun:
    """The EM path from ``x0``, every E-step by ``counts_at`` (module docstring); warns
    (:class:`.em.CalibrationWarning`) when the cycle cap stops it first."""
    run = EMRun(settings, x0)
    while (x := run.ask()) is not None:
        image, value = model.m_step(x, counts_at(x))
        if run.tell(image, value, model.project, model.change) and progress:
            progress(run.cycles, run.trace[-1], run.change)
    if not run.converged:
        warnings.warn(f"EM stopped at the cycle cap ({settings.max_cycles}) before converging",
                      CalibrationWarning, stacklevel=3)
    return run


def right_wrong_start(est: ItemEstimates, model: CalibModel) -> ItemEstimates:
    """``est`` with the model's constraints: c = 0 below the 3PL, a = 1 for the 1PL."""
    est = est.copy()
    if model != "3PL":
        est.c[:] = 0.0
    if model == "1PL":
        est.a[:] = 1.0
    return est


def left_out_of(n_per_item: np.ndarray, fixed: np.ndarray, min_responses: int) -> dict[int, str]:
    """The items not held fixed with fewer than ``min_responses`` answers, and why."""
    return {int(i): f"too few responses ({n_per_item[i]} < {min_responses})"
            for i in np.flatnonzero((n_per_item < min_responses) & ~fixed)}


def partial_result(model: JointModel, vec: FloatArray, categories: FloatArray, n_responses: np.ndarray,
                   log_likelihood: float, run: EMRun, seconds: float, cov: FloatArray | None,
                   joint: bool) -> PolytomousResult:
    """The partial-credit items' result at ``vec``: SEs from ``cov`` (None: not computed), RMSD
    from the final category counts."""
    assert model.layout is not None
    layout = model.layout
    a, b = layout.unpack(vec)
    se_a, se_b = (np.full(a.size, np.nan), np.full(b.shape, np.nan)) if cov is None else \
        pc_standard_errors(cov, vec, layout)
    names = [m for code in layout.models for m, c in MODEL_CODES.items() if c == code]
    out = PolytomousResult(
        models=names, a=a, thresholds=b, se_a=se_a, se_thresholds=se_b,
        rmsd=category_rmsd(categories, a, b, layout.models, model.nodes, model.scale),
        n_responses=n_responses, log_likelihood=log_likelihood, cycles=run.cycles, converged=run.converged,
        seconds=seconds, priors=model.partial_priors, history=run.trace)
    if joint:
        out.se_method = JOINT_SE_METHOD
    return out


@dataclass
class _LatentWeights:
    """The latent distribution's log weights at the nodes, and its mean and SD."""

    log_w: FloatArray
    mean: float = 0.0
    sd: float = 1.0


def calibrate_mixed(right_wrong: ResponseData | None = None, partial: CategoryData | None = None, *,
                    model: CalibModel = "3PL", partial_models: str | list[str] = "GRM",
                    priors: Priors | None = None, partial_priors: Priors | None = None,
                    fixed: dict[int, tuple[float, float, float]] | None = None,
                    anchors: FloatArray | None = None, settings: EMSettings | None = None,
                    start: StartMethod = "pairwise", initial: ItemEstimates | None = None,
                    latent: Latent = "fixed", min_responses: int = 30, standard_errors: bool = True,
                    scale: float = D_LOGISTIC, progress: Progress | None = None) -> MixedResult:
    """MML-EM estimates of the right/wrong items in ``right_wrong`` (as ``model``) and the
    partial-credit items in ``partial`` (``partial_models``: one model or one per item) from one
    posterior per person (module docstring). Both data sets index the same persons.

    ``fixed`` maps a right/wrong item's index -> (a, b, c) held at those values; ``anchors``
    (persons x nodes) is the log-likelihood of each person's answers to items outside the
    data, held fixed. Right/wrong items with fewer than ``min_responses`` answers are left out
    of the estimation (they still inform the posterior at their starting values: ``initial``,
    or from the responses by ``start``). ``progress(cycles, objective, change)`` after every
    accepted step."""
    if right_wrong is None and partial is None:
        raise ValueError("nothing to calibrate: give right/wrong or partial-credit responses")
    if right_wrong is not None and partial is not None and right_wrong.n_persons != partial.n_persons:
        raise ValueError("right/wrong and partial-credit responses must index the same persons")
    if right_wrong is not None and scale != 1.0:
        raise ValueError("right/wrong items are calibrated on the metric D = 1")
    if model not in ("1PL", "2PL", "3PL"):
        raise ValueError(f"unknown model {model!r}")
    started = time.perf_counter()
    fixed = fixed or {}
    settings = settings or EMSettings()
    if settings.method == "oem" and not fixed and anchors is None:
        settings = replace(settings, method="mem")  # OEM needs items to be fixed
    nodes, log_w = settings.quadrature()

    m = right_wrong.n_items if right_wrong is not None else 0
    n_per_item = right_wrong.per_item() if right_wrong is not None else np.zeros(0, dtype=np.int64)
    is_fixed = np.zeros(m, dtype=bool)
    if fixed:
        is_fixed[np.fromiter(fixed, dtype=np.int64)] = True
    left_out = left_out_of(n_per_item, is_fixed, min_responses)
    free = ~is_fixed & (n_per_item >= min_responses)
    if initial is not None:
        est = initial.copy()
    elif right_wrong is not None:
        est = starting_values(right_wrong, model, start)
    else:
        est = ItemEstimates(np.zeros(0), np.zeros(0), np.zeros(0))
    est = right_wrong_start(est, model)
    for i, values in fixed.items():
        est.a[i], est.b[i], est.c[i] = values

    names = model_names(partial_models, partial.n_items) if partial is not None else []
    pc_priors = partial_priors if partial_priors is not None else Priors.default("2PL")
    if pc_priors.c is not None:
        raise ValueError("a guessing prior (c) has no meaning for partial-credit items")
    layout = Layout(partial.categories, np.array([MODEL_CODES[n] for n in names], dtype=np.int8)) \
        if partial is not None else None
    vec = layout.pack(*pc_starting_values(partial, names)) if partial is not None and layout else np.zeros(0)
    joint = JointModel(model, est, free, free | is_fixed, priors if priors is not None else Priors.default(model),
                       nodes, layout, pc_priors, scale)
    answers = PartialAnswers.estimated(partial, joint.partial_items(vec)) if partial is not None else None
    use = is_fixed if settings.method == "oem" and fixed else None
    weights = _LatentWeights(log_w)
    anchored = bool(fixed) or anchors is not None or model == "1PL"

    def counts_at(x: FloatArray, final: bool = False
                  ) -> tuple[ExpectedCounts, FloatArray | None, FloatArray | None]:
        e, v = joint.split(x)
        part = answers.at(joint.partial_items(v)) if answers is not None else None
        cross = (layout, v, scale) if final and layout is not None and standard_errors else None
        out = joint_e_step(right_wrong, e, nodes, weights.log_w, part, None if final else use,
                           (model, free) if final and right_wrong is not None else None, cross, anchors)
        if latent != "fixed" and not final:
            weights.log_w, weights.mean, weights.sd = update_latent(out[0].mass, nodes, latent, anchored)
        return out

    run = run_em(joint, joint.join(est, vec), settings, lambda x: counts_at(x)[0], progress)
    est, vec = joint.split(run.x)
    final, others, across = counts_at(run.x, final=True)
    seconds = time.perf_counter() - started  # the EM and its last pass (the SEs' statistics)
    log_w = weights.log_w
    pc_info, pc_cov, rw_cov = None, None, None
    if partial is not None and layout is not None and standard_errors:
        a, _ = layout.unpack(vec)
        if others is None:  # no right/wrong items: the anchors are all the other answers
            others = anchors if anchors is not None else np.zeros((partial.n_persons, nodes.size))
        pc_info = pc_information(partial, vec, layout, nodes, log_w, pc_priors.floated(a), scale, others)
    both = pc_info is not None and across is not None and bool(free.any())
    if both and pc_info is not None and across is not None:
        rw_info = rw_information(est, final, nodes, model, joint.right_wrong_priors(est), free)
        cov = covariance_of(np.block([[rw_info, across], [across.T, pc_info]]))
        size = rw_info.shape[0]
        rw_cov, pc_cov = cov[:size, :size], cov[size:, size:]
    elif pc_info is not None:
        pc_cov = covariance_of(pc_info)
    rw_result = None
    if right_wrong is not None:
        rw_result = finish(est, final, nodes, model, joint.right_wrong_priors(est), free, n_per_item, left_out,
                           run.cycles, run.converged, seconds, weights.mean, weights.sd,
                           run.trace, covariance=rw_cov)
        if both:
            rw_result.se_method = JOINT_SE_METHOD
    pc_result = None
    if partial is not None and final.categories is not None:
        pc_result = partial_result(joint, vec, final.categories,
                                   np.bincount(partial.item, minlength=partial.n_items), final.log_likelihood,
                                   run, seconds, pc_cov, both)
    return MixedResult(rw_result, pc_result, final.log_likelihood, run.cycles, run.converged,
                       time.perf_counter() - started, run.trace)


def calibrate(data: ResponseData, model: CalibModel = "2PL", *,
              fixed: dict[int, tuple[float, float, float]] | None = None, method: Literal["mem", "oem"] = "mem",
              n_nodes: int = 41, nodes_kind: NodesKind = "equal", priors: Priors | None = None,
              start: StartMethod = "pairwise", initial: ItemEstimates | None = None, latent: Latent = "fixed",
              max_iter: int = 500, tol: float = 1e-4, ll_tol: float = 1e-7, min_responses: int = 30,
              accelerate: bool = True, progress: Progress | None = None) -> CalibrationResult:
    """Right/wrong items alone by :func:`calibrate_mixed` (module docstring): ``fixed`` maps item
    index -> (a, b, c) held at those values; converged when the largest parameter change is
    below ``tol`` and the relative change of the objective below ``ll_tol``
    (:class:`.em.EMSettings`); otherwise stops at ``max_iter`` cycles with a
    :class:`.em.CalibrationWarning`."""
    settings = EMSettings(n_nodes, nodes_kind, tol, ll_tol, max_iter, accelerate, method)
    result = calibrate_mixed(data, None, model=model, priors=priors, fixed=fixed, settings=settings, start=start,
                             initial=initial, latent=latent, min_responses=min_responses, progress=progress)
    assert result.right_wrong is not None
    return result.right_wrong


def calibrate_polytomous(data: CategoryData, model: str | list[str], priors: Priors | None = None,
                         n_nodes: int = 41, max_cycles: int = 500, tol: float = 1e-4, scale: float = D_LOGISTIC,
                         standard_errors: bool = True, accelerate: bool = True,
                         anchors: FloatArray | None = None) -> PolytomousResult:
    """GRM and GPCM items alone by :func:`calibrate_mixed`; ``model`` names one model for every
    item or one per item. ``anchors``: online calibration of these items against fixed ones."""
    settings = EMSettings(n_nodes, "equal", tol, EMSettings.ll_tol, max_cycles, accelerate)
    result = calibrate_mixed(None, data, partial_models=model, partial_priors=priors, anchors=anchors,
                             settings=settings, scale=scale, standard_errors=standard_errors)
    assert result.partial is not None
    return result.partial


def calibrate_sharded(shards: list[ResponseData], initial: ItemEstimates, fixed: np.ndarray, model: CalibModel,
                      settings: EMSettings | None = None, priors: Priors | None = None, min_responses: int = 30,
                      map_: Callable[..., Any] = map, progress: Progress | None = None) -> CalibrationResult:
    """Right/wrong items over shards of persons: every E-step maps :func:`.estep.e_step` over
    the shards (``map_``: e.g. a process pool's ``map``) and sums their
    :class:`.data.ExpectedCounts`; the M-step and the path are :func:`calibrate`'s. ``fixed``
    marks the items held at their ``initial`` values. Items are indexed alike in every shard;
    a person must not be split across shards."""
    from .estep import e_step

    started = time.perf_counter()
    if not shards:
        raise ValueError("no shards")
    settings = settings or EMSettings()
    n_items = shards[0].n_items
    nodes, log_w = settings.quadrature()
    n_per_item = np.sum([sh.per_item() for sh in shards], axis=0)
    left_out = left_out_of(n_per_item, fixed, min_responses)
    free = ~fixed & (n_per_item >= min_responses)
    est = right_wrong_start(initial, model)
    joint = JointModel(model, est, free, free | fixed, priors if priors is not None else Priors.default(model), nodes)
    use = fixed if settings.method == "oem" and fixed.any() else None

    def pass_over(x: FloatArray, items: np.ndarray | None, final: bool = False) -> ExpectedCounts:
        cur, _ = joint.split(x)
        total = ExpectedCounts.zeros(n_items, nodes.size)
        information = (model, free) if final else None
        n = len(shards)
        for part in map_(e_step, shards, [cur] * n, [nodes] * n, [log_w] * n, [items] * n, [information] * n):
            total = total + part
        return total

    run = run_em(joint, joint.join(est, np.zeros(0)), settings, lambda x: pass_over(x, use), progress)
    est, _ = joint.split(run.x)
    final = pass_over(run.x, None, final=True)
    return finish(est, final, nodes, model, joint.right_wrong_priors(est), free, n_per_item, left_out, run.cycles,
                  run.converged, time.perf_counter() - started, trace=run.trace)
