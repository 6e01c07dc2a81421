"""Calibration as a managed job: from the answer history to a new item-bank version.

The job is online calibration (Ban et al. 2001): operational items keep their bank values and
anchor the scale, pretest items are estimated by MEM (or OEM) with Bock-Aitkin EM, right/wrong
and partial-credit (GRM, GPCM) ones in one joint EM (:mod:`irtcat.irt.calibration`). It runs as
steps that a Standard state machine (``statemachines/calibration.asl.json``) sequences, each
one a Lambda over the job's working storage in the bank bucket
(``calibration/{bank_id}/{run_id}/``):

1. :func:`prepare` reads the history since the bank's last calibration (direct S3 listing of
   the ``history/dt=YYYY-MM-DD/`` partitions: the date prefixes prune the listing, and one pass
   over the records is needed anyway to group them by session), keeps the applied answers to
   this bank's items, and writes them as shards of whole sessions (a person's responses must
   stay together: the E-step's posterior is per person), plus the starting parameters. An
   answer outside its item's categories is counted and left out; a partial-credit pretest item
   whose categories the answers do not all cover is left out with the reason.
2. :func:`e_step` runs per shard (a Distributed Map over the shard objects) and writes the
   shard's :class:`~irtcat.irt.calibration.ExpectedCounts` (with the partial-credit items'
   expected category counts).
3. :func:`m_step` sums them, runs both families' M-steps (:class:`~irtcat.irt.calibration.JointModel`)
   and tells the EM driver (:class:`~irtcat.irt.calibration.EMRun`, kept with the parameters
   between steps: the same SQUAREM path as ``irtcat calibrate``), which decides: another
   E-step, a last E-step at the converged values (for SEs and fit), or done.
4. :func:`finalize` builds the candidate bank version and the calibration report (with the
   operational items' drift check, :mod:`.calibration_drift`), and applies the quality gates.
5. :func:`publish` writes the new version and moves the current-version pointer, only if the
   gates passed and nobody moved the pointer meanwhile. Sessions keep the version they
   started with (they pin ``bank_version``).
:func:`run_in_process` runs the same steps in one process (tests, ``irtcat calibrate`` on a
history folder), so the sharded result can be compared with the single-process one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from ..irt.calibration import (
    CalibModel,
    CalibrationResult,
    CategoryData,
    EMRun,
    EMSettings,
    ExpectedCounts,
    ItemEstimates,
    JointModel,
    PartialAnswers,
    PolytomousResult,
    Priors,
    ResponseData,
    joint_e_step,
    priors_from,
    starting_values,
)
from ..irt.calibration.engine import left_out_of, partial_result, right_wrong_start
from ..irt.calibration.partial_credit import Layout
from ..irt.calibration.partial_credit import observed_information as partial_information
from ..irt.calibration.partial_credit import starting_values as partial_starting_values
from ..irt.calibration.results import JOINT_SE_METHOD, covariance_of, finish
from ..irt.calibration.right_wrong import observed_information
from ..irt.model import FloatArray
from ..irt.polytomous import MODEL_CODES, PolytomousItems
from .bank import ItemBank
from .base import Message
from .calibration_bank import calibrated_bank, with_partial_estimates
from .calibration_drift import operational_drift
from .calibration_history import ResponseTimes, applied_answers, history_keys
from .health import bank_reliability
from .ports import BankPublisher, ObjectStore
from .promotion import GATES

Phase = Literal["iterate", "final", "done", "nothing"]
RESPONSES_PER_SHARD = 100_000


class CalibrationRequest(Message):
    """What starts a run (the schedule's input, or ``irtcat local calibrate``)."""

    bank_id: str = Field(min_length=1, max_length=128)
    since: datetime | None = Field(default=None, description="default: the bank's last calibration")
    model: CalibModel | None = Field(default=None, description="default: the bank's model")
    method: Literal["mem", "oem"] = "mem"
    shards: int | None = Field(default=None, ge=1, le=1000,
                               description=f"default: one per {RESPONSES_PER_SHARD:,} responses")
    max_iter: int = Field(default=EMSettings.max_cycles, ge=1, le=2000, description="EM cycles (E-steps)")
    tol: float = Field(default=EMSettings.tol, gt=0)
    n_nodes: int = Field(default=EMSettings.n_nodes, ge=5, le=201, description="quadrature nodes on [-6, 6]")
    min_responses: int = Field(default=30, ge=1, description="an item with fewer is left out")
    promote_se_b: float = Field(default=GATES.max_se_b, gt=0)
    promote_n: int = Field(default=GATES.min_responses, ge=1)
    promote_rmsd: float = Field(default=GATES.max_rmsd, gt=0)
    min_run_responses: int = Field(default=200, ge=0, description="quality gate: responses in the run")
    priors: Literal["default", "none"] | dict[str, Any] = Field(
        default="default", description="default, none (plain MML) or prior settings (Priors.from_dict)")

    @field_validator("priors")
    @classmethod
    def _priors(cls, value: Literal["default", "none"] | dict[str, Any]) -> Literal["default", "none"] | dict[str, Any]:
        if isinstance(value, dict):
            Priors.from_dict(value)  # a ValueError names the bad setting
        return value

    @field_validator("since")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is UTC (the history's ``processed_at`` is)."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class CalibrationJob(Message):
    """The state carried from step to step (small: the data live in the working storage)."""

    request: CalibrationRequest
    run_id: str
    prefix: str  # calibration/{bank_id}/{run_id}/
    shard_prefix: str
    base_version: int
    started_at: datetime
    through: datetime | None = None
    n_shards: int = 0
    n_responses: int = 0
    n_sessions: int = 0
    median_length: int = 0  # the sessions' median number of answers (the reliability bound's length)
    n_out_of_range: int = Field(default=0, description="answers whose score is not one of the item's categories "
                                                       "in the current version (left out)")
    iteration: int = 0
    phase: Phase = "iterate"
    change: float | None = None
    trace: list[float] = Field(default_factory=list)
    converged: bool = False
    gates_passed: bool | None = None
    gate_failures: list[str] = Field(default_factory=list)
    new_version: int | None = None
    promoted: list[str] = Field(default_factory=list)

    def settings(self) -> EMSettings:
        r = self.request
        return EMSettings(n_nodes=r.n_nodes, tol=r.tol, max_cycles=r.max_iter, method=r.method)

    def partial_priors(self) -> Priors:
        """The priors of the partial-credit items' slopes and thresholds (a c prior dropped)."""
        return dataclasses.replace(priors_from(self.request.priors, "2PL"), c=None)

    def params_key(self, iteration: int) -> str:
        return f"{self.prefix}params/{iteration:04d}.json"

    def stats_prefix(self, iteration: int) -> str:
        return f"{self.prefix}stats/{iteration:04d}/"


def run_prefix(bank_id: str, run_id: str) -> str:
    """Where a run keeps its shards, statistics, parameters, report and candidate bank."""
    return f"calibration/{bank_id}/{run_id}/"


def report_key(bank_id: str, run_id: str) -> str:
    return f"{run_prefix(bank_id, run_id)}report.json"


class ShardTask(Message):
    """One Distributed Map item: the job and one shard object."""

    job: CalibrationJob
    key: str


class GatesFailed(Exception):
    """The run did not pass its quality gates; the bank is untouched."""


class BankMovedOn(Exception):
    """The current-version pointer moved since the run started; nothing is published."""


# ------------------------------------------------------------------ storage formats


def _npz(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _load_npz(raw: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(raw)) as z:
        return {k: z[k] for k in z.files}


@dataclasses.dataclass
class _Partial:
    """The run's partial-credit items (GRM, GPCM): their bank positions, models, current
    values, which are estimated (pretest items the data identify), and why others are left out."""

    index: np.ndarray
    models: list[str]
    a: FloatArray
    thresholds: FloatArray  # (items, widest m), NaN-padded
    free: np.ndarray
    left_out: dict[int, str]  # bank position -> reason
    scale: float

    def items(self) -> PolytomousItems:
        codes = np.array([MODEL_CODES[m] for m in self.models], dtype=np.int8)
        return PolytomousItems(codes, self.a, self.thresholds, self.scale)

    def layout(self) -> Layout:
        """The free items' parameter layout (:class:`~irtcat.irt.polytomous_calibration.Layout`)."""
        items = self.items()
        return Layout(items.categories[self.free], items.model[self.free])

    def free_values(self) -> tuple[FloatArray, FloatArray]:
        """The free items' a and thresholds, trimmed to their widest m."""
        b = self.thresholds[self.free]
        width = int(np.max(np.sum(~np.isnan(b), axis=1)))
        return self.a[self.free], b[:, :width]

    def with_free(self, a: FloatArray, b: FloatArray) -> _Partial:
        new_a, new_b = self.a.copy(), self.thresholds.copy()
        new_a[self.free] = a
        new_b[np.flatnonzero(self.free)[:, None], np.arange(b.shape[1])[None, :]] = b
        return dataclasses.replace(self, a=new_a, thresholds=new_b)

    def doc(self) -> dict[str, Any]:
        return {"index": self.index.tolist(), "models": self.models, "a": self.a.tolist(),
                "thresholds": [[None if np.isnan(x) else float(x) for x in row] for row in self.thresholds],
                "free": self.free.tolist(), "left_out": {str(k): v for k, v in self.left_out.items()},
                "scale": self.scale}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> _Partial:
        return cls(np.array(doc["index"], dtype=np.int64), list(doc["models"]), np.array(doc["a"], dtype=float),
                   np.array([[np.nan if x is None else x for x in row] for row in doc["thresholds"]], dtype=float),
                   np.array(doc["free"], dtype=bool), {int(k): v for k, v in doc["left_out"].items()},
                   float(doc["scale"]))


@dataclasses.dataclass
class _Params:
    """What the run estimates (right/wrong rows at their starting or fixed values, the
    partial-credit items) and the EM driver's state: one JSON object per E-step."""

    model: CalibModel
    base: ItemEstimates
    fixed: np.ndarray
    free: np.ndarray
    left_out: dict[int, str]
    partial: _Partial | None
    em: dict[str, Any]

    def joint(self, job: CalibrationJob) -> JointModel:
        """The run's :class:`~irtcat.irt.calibration.JointModel`: a partial-credit item's row
        among the right/wrong ones is a placeholder, neither estimated nor informing the slope prior."""
        nodes, _ = job.settings().quadrature()
        informed = self.free | self.fixed
        layout = None
        if self.partial is not None:
            informed[self.partial.index] = False
            layout = self.partial.layout() if self.partial.free.any() else None
        return JointModel(self.model, self.base, self.free, informed, priors_from(job.request.priors, self.model),
                          nodes, layout, job.partial_priors(), self.partial.scale if self.partial else 1.0)

    def run(self, job: CalibrationJob) -> EMRun:
        return EMRun.from_doc(job.settings(), self.em)

    def point(self, job: CalibrationJob) -> FloatArray:
        """Where the next E-step goes: the driver's question, or its last point when it is done."""
        run = self.run(job)
        asked = run.ask()
        return run.x if asked is None else asked

    def at(self, job: CalibrationJob, x: FloatArray) -> tuple[ItemEstimates, _Partial | None]:
        """The right/wrong estimates and the partial-credit items at point ``x``."""
        joint = self.joint(job)
        est, vec = joint.split(x)
        partial = self.partial
        if partial is not None and joint.layout is not None:
            partial = partial.with_free(*joint.layout.unpack(vec))
        return est, partial

    @classmethod
    def load(cls, store: ObjectStore, key: str) -> _Params:
        doc = json.loads(store.get(key))
        est = ItemEstimates(np.array(doc["a"], dtype=float), np.array(doc["b"], dtype=float),
                            np.array(doc["c"], dtype=float))
        partial = _Partial.from_doc(doc["partial"]) if doc.get("partial") else None
        return cls(doc["model"], est, np.array(doc["fixed"], dtype=bool), np.array(doc["free"], dtype=bool),
                   {int(k): v for k, v in doc["left_out"].items()}, partial, doc["em"])

    def save(self, store: ObjectStore, key: str) -> None:
        store.put(key, json.dumps({
            "model": self.model, "a": self.base.a.tolist(), "b": self.base.b.tolist(), "c": self.base.c.tolist(),
            "fixed": self.fixed.tolist(), "free": self.free.tolist(),
            "left_out": {str(k): v for k, v in self.left_out.items()},
            "partial": self.partial.doc() if self.partial is not None else None, "em": self.em}).encode())


# ------------------------------------------------------------------ history


def shard_of(session_id: str, n_shards: int) -> int:
    """A session's shard: stable across runs and machines (CRC-32 of the id)."""
    return zlib.crc32(session_id.encode()) % n_shards


# ------------------------------------------------------------------ the steps


def prepare(request: CalibrationRequest, banks: BankPublisher, history: ObjectStore, work: ObjectStore,
            run_id: str, now: datetime | None = None) -> CalibrationJob:
    """Collect and shard the responses, write the starting parameters (step 1)."""
    now = now or datetime.now(UTC)
    version = banks.current_version(request.bank_id)
    bank = banks.bank(request.bank_id, version)
    since = request.since or last_calibrated(work, request.bank_id)
    prefix = run_prefix(request.bank_id, run_id)
    job = CalibrationJob(request=request, run_id=run_id, prefix=prefix, shard_prefix=f"{prefix}shards/",
                         base_version=version, started_at=now)
    index = {it.item_id: j for j, it in enumerate(bank.items)}
    categories = bank.engine.categories()
    sessions: dict[str, dict[int, int]] = {}
    through = since
    out_of_range = 0
    times = ResponseTimes()
    for rec in applied_answers(history, history_keys(history, since), request.bank_id, since):
        j = index.get(rec.item_id or "")
        if j is None:
            continue  # an item no longer in the current version
        times.add(rec)
        if not 0 <= int(rec.response or 0) < categories[j]:
            out_of_range += 1  # scored under a version whose item had other categories
            continue
        # the history is at-least-once: a session's answer to an item counts once
        sessions.setdefault(rec.session_id or "", {}).setdefault(j, int(rec.response or 0))
        through = rec.processed_at if through is None or rec.processed_at > through else through
    pretest = np.array([it.status == "pretest" for it in bank.items])
    partial = _partial_items(bank, sessions, pretest, request.min_responses)
    if partial is not None and partial.left_out:
        for answers in sessions.values():  # a left-out item's provisional values must not inform anyone
            for j in partial.left_out:
                answers.pop(j, None)
    n_responses = sum(len(v) for v in sessions.values())
    lengths = sorted(len(v) for v in sessions.values())
    job = job.model_copy(update={"n_responses": n_responses, "n_sessions": len(sessions), "through": through,
                                 "median_length": lengths[len(lengths) // 2] if lengths else 0,
                                 "n_out_of_range": out_of_range})
    answered_pretest = {j for answers in sessions.values() for j in answers if pretest[j]}
    if not answered_pretest:
        return job.model_copy(update={"phase": "nothing"})
    times.save(work, prefix)
    n_shards = request.shards or max(1, min(1000, math.ceil(n_responses / RESPONSES_PER_SHARD)))
    buckets: list[list[tuple[int, int, int]]] = [[] for _ in range(n_shards)]
    persons = [0] * n_shards
    for session_id in sorted(sessions):
        k = shard_of(session_id, n_shards)
        for j, x in sessions[session_id].items():
            buckets[k].append((persons[k], j, x))
        persons[k] += 1
    for k, rows in enumerate(buckets):
        if not rows:
            continue
        arr = np.array(rows, dtype=np.int64)
        work.put(f"{job.shard_prefix}shard-{k:05d}.npz",
                 _npz(person=arr[:, 0].astype(np.int32), item=arr[:, 1].astype(np.int32),
                      response=arr[:, 2].astype(np.int8), n_persons=np.array(persons[k]),
                      n_items=np.array(len(bank.items))))
    model = request.model or _calib_model(bank)
    n_per_item = np.zeros(len(bank.items), dtype=np.int64)
    for answers in sessions.values():
        for j in answers:
            n_per_item[j] += 1
    is_partial = np.array([it.model is not None for it in bank.items])
    fixed = ~pretest | is_partial
    initial = ItemEstimates(np.array([it.a * bank.scale for it in bank.items]),
                            np.array([0.0 if it.model else it.difficulty for it in bank.items]),
                            np.array([it.c for it in bank.items]))
    left_out = left_out_of(n_per_item, fixed, request.min_responses)
    free = ~fixed & (n_per_item >= request.min_responses)
    # free right/wrong items start where ``irtcat calibrate`` starts them: from the responses
    # (pairwise), not from provisional bank values, so both follow the same EM path
    rows = [(p, j, x) for p, answers in enumerate(sessions.values()) for j, x in answers.items() if not is_partial[j]]
    if free.any() and rows:
        arr = np.array(rows, dtype=np.int64)
        start = starting_values(ResponseData.from_long(arr[:, 0], arr[:, 1], arr[:, 2], n_persons=len(sessions),
                                                       n_items=len(bank.items)), model, "pairwise")
        for values, chosen in ((initial.a, start.a), (initial.b, start.b), (initial.c, start.c)):
            values[free] = chosen[free]
    base = right_wrong_start(initial, model)
    params = _Params(model, base, fixed, free, left_out, partial, {})
    joint = params.joint(job)
    vec = joint.layout.pack(*partial.free_values()) if joint.layout is not None and partial is not None else np.zeros(0)
    params.em = EMRun(job.settings(), joint.join(base, vec)).to_doc()
    params.save(work, job.params_key(0))
    return job.model_copy(update={"n_shards": sum(1 for rows in buckets if rows)})


def _partial_items(bank: ItemBank, sessions: dict[str, dict[int, int]], pretest: np.ndarray,
                   min_responses: int) -> _Partial | None:
    """The bank's partial-credit items: pretest ones with at least ``min_responses`` answers in
    every category they state are estimated, from starting values from those answers
    (:func:`~irtcat.irt.polytomous_calibration.starting_values`); other pretest ones are left
    out with the reason; operational ones stay fixed."""
    index = np.array([j for j, it in enumerate(bank.items) if it.model is not None], dtype=np.int64)
    if index.size == 0:
        return None
    models = [str(bank.items[j].model) for j in index]
    thresholds = [list(bank.items[j].thresholds) for j in index]
    items = PolytomousItems.build(models, [bank.items[j].a for j in index], thresholds, bank.scale)
    position = {int(j): k for k, j in enumerate(index)}
    rows = [(p, position[j], x) for p, answers in enumerate(sessions.values()) for j, x in answers.items()
            if j in position and pretest[j]]
    arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
    unusable = CategoryData.unusable(arr[:, 1], arr[:, 2], index.size, items.categories, min_responses)
    left_out = {int(index[k]): why for k, why in unusable.items() if pretest[index[k]]}
    free = np.array([pretest[j] and int(j) not in left_out for j in index], dtype=bool)
    partial = _Partial(index, models, items.a.copy(), items.thresholds.copy(), free, left_out, bank.scale)
    if free.any():
        keep = free[arr[:, 1]]
        position_free = np.cumsum(free) - 1
        data = CategoryData.from_long(arr[keep, 0], position_free[arr[keep, 1]], arr[keep, 2],
                                      categories=items.categories[free])
        partial = partial.with_free(*partial_starting_values(data, [m for m, f in zip(models, free, strict=True)
                                                                   if f]))
    return partial


def _calib_model(bank: ItemBank) -> CalibModel:
    """The right/wrong model the job calibrates (a bank calibrated as GRM/GPCM has none: 2PL)."""
    if bank.model in ("GRM", "GPCM"):
        return "2PL"
    return "3PL" if bank.model in ("3PL", "4PL") else bank.model  # type: ignore[return-value]


def load_shard(work: ObjectStore, key: str, partial: _Partial | None = None
               ) -> tuple[ResponseData, PartialAnswers | None]:
    """A shard's right/wrong answers and, given the run's partial-credit items, its answers to them."""
    z = _load_npz(work.get(key))
    n_persons, n_items = int(z["n_persons"]), int(z["n_items"])
    person, item, response = z["person"].astype(np.int64), z["item"].astype(np.int64), z["response"].astype(np.int64)
    answers = None
    if partial is not None:
        position = np.full(n_items, -1)
        position[partial.index] = np.arange(partial.index.size)
        rows = position[item] >= 0
        answers = PartialAnswers(partial.items(), partial.free, person[rows], position[item[rows]], response[rows],
                                 n_persons)
        person, item, response = person[~rows], item[~rows], response[~rows]
    return ResponseData.from_long(person, item, response, n_persons=n_persons, n_items=n_items), answers


def e_step(task: ShardTask, work: ObjectStore, cache: dict[str, Any] | None = None) -> str:
    """Expected counts of one shard at the point the EM driver asks for (step 2); returns their
    key. On the final pass a shard with answers to estimated partial-credit items also writes
    those answers and their persons' log-likelihood of everything else (the anchors of their
    standard errors). Idempotent: a retried worker overwrites the same objects."""
    job = task.job
    params = _Params.load(work, job.params_key(job.iteration))
    shard = cache.get(task.key) if cache is not None else None
    if shard is None:
        shard = load_shard(work, task.key, params.partial)
        if cache is not None:
            cache[task.key] = shard  # a warm container keeps its shard between cycles
    data, answers = shard
    est, partial = params.at(job, params.point(job))
    if answers is not None and partial is not None:
        answers = answers.at(partial.items())
    settings = job.settings()
    nodes, log_w = settings.quadrature()
    final = job.phase == "final"
    use = params.fixed if settings.method == "oem" and params.fixed.any() and not final else None
    cross = None
    if final and partial is not None and partial.free.any():
        layout = partial.layout()
        cross = (layout, layout.pack(*partial.free_values()), partial.scale)
    counts, others, across = joint_e_step(data, est, nodes, log_w, answers, use,
                                          information=(params.model, params.free) if final else None, cross=cross)
    name = task.key.rsplit("/", 1)[-1]
    if final and answers is not None and answers.free.any():
        free = answers.free_data()
        persons, person = np.unique(free.person, return_inverse=True)
        assert across is not None and others is not None
        work.put(f"{job.prefix}partial_se/{name}", _npz(anchors=others[persons], person=person, item=free.item,
                                                        category=free.category, cross=across))
    key = f"{job.stats_prefix(job.iteration)}{name}"
    work.put(key, counts.to_bytes())
    return key


def summed_counts(job: CalibrationJob, work: ObjectStore) -> ExpectedCounts:
    """The sum over every shard's statistics of this cycle (an error if any is missing)."""
    keys = work.list(job.stats_prefix(job.iteration))
    if len(keys) != job.n_shards:
        raise RuntimeError(f"cycle {job.iteration}: {len(keys)} of {job.n_shards} shard statistics present")
    total: ExpectedCounts | None = None
    for key in keys:
        part = ExpectedCounts.from_bytes(work.get(key))
        total = part if total is None else total + part
    assert total is not None
    return total


def m_step(job: CalibrationJob, work: ObjectStore) -> CalibrationJob:
    """Reduce, M-step, tell the EM driver (step 3): ``iterate`` again, a ``final`` E-step, or ``done``."""
    if job.phase == "final":
        return job.model_copy(update={"phase": "done"})
    params = _Params.load(work, job.params_key(job.iteration))
    joint = params.joint(job)
    run = params.run(job)
    x = run.ask()
    assert x is not None, "the EM driver asked for nothing: the run was over"
    image, objective = joint.m_step(x, summed_counts(job, work))
    run.tell(image, objective, joint.project, joint.change)
    params.em = run.to_doc()
    iteration = job.iteration + 1
    params.save(work, job.params_key(iteration))
    phase: Phase = "final" if run.finished else "iterate"
    return job.model_copy(update={"iteration": iteration, "change": None if not math.isfinite(run.change) else
                                  run.change, "trace": run.trace, "converged": run.converged, "phase": phase})


def results_of(job: CalibrationJob, work: ObjectStore
               ) -> tuple[CalibrationResult, tuple[PolytomousResult, list[int]] | None]:
    """The run's result from the final E-step's statistics: the right/wrong items', and the
    estimated partial-credit items' with their bank positions (None: the run had none). The
    partial-credit RMSD comes from the final category counts; their information block is the
    Hessian of the marginal log-likelihood over the persons who answered them (the only
    persons whose posterior they touch), with the log-likelihood of those persons' other
    answers as anchors; the block across the families is the shards' sum
    (:func:`~irtcat.irt.calibration.estep.cross_information`). With items of both families
    estimated, the SEs come from the whole information matrix inverted
    (:data:`~irtcat.irt.calibration.JOINT_SE_METHOD`)."""
    params = _Params.load(work, job.params_key(job.iteration))
    run = params.run(job)
    joint = params.joint(job)
    est, partial = params.at(job, run.x)
    counts = summed_counts(job, work)
    nodes, log_w = job.settings().quadrature()
    n_per_item = np.rint(counts.n.sum(axis=1)).astype(np.int64)
    seconds = (datetime.now(UTC) - job.started_at).total_seconds()
    priors = joint.right_wrong_priors(est)
    rw_cov, joint_se, partial_out = None, False, None
    if partial is not None and joint.layout is not None:
        assert counts.categories is not None
        layout = joint.layout
        a, b = partial.free_values()
        vec = layout.pack(a, b)
        parts = [_load_npz(work.get(key)) for key in work.list(f"{job.prefix}partial_se/")]
        offsets = np.cumsum([0] + [len(z["anchors"]) for z in parts])
        data = CategoryData(np.concatenate([z["person"] + offsets[k] for k, z in enumerate(parts)]).astype(np.int64),
                            np.concatenate([z["item"] for z in parts]).astype(np.int64),
                            np.concatenate([z["category"] for z in parts]).astype(np.int64), int(offsets[-1]),
                            a.size, partial.items().categories[partial.free])
        pc_info = partial_information(data, vec, layout, nodes, log_w, joint.partial_priors.floated(a), partial.scale,
                                      np.concatenate([z["anchors"] for z in parts]))
        cross = np.sum([z["cross"] for z in parts], axis=0)
        joint_se = bool(params.free.any()) and cross.size > 0
        if joint_se:
            rw_info = observed_information(est, counts, nodes, params.model, priors, params.free)
            size = rw_info.shape[0]
            cov = covariance_of(np.block([[rw_info, cross], [cross.T, pc_info]]))
            rw_cov, pc_cov = cov[:size, :size], cov[size:, size:]
        else:
            pc_cov = covariance_of(pc_info)
        estimates = partial_result(joint, vec, counts.categories, np.bincount(data.item, minlength=a.size),
                                   counts.log_likelihood, run, seconds, pc_cov, joint_se)
        partial_out = (estimates, [int(j) for j in partial.index[partial.free]])
    result = finish(est, counts, nodes, params.model, priors, params.free, n_per_item,
                    params.left_out, run.cycles, run.converged, seconds, trace=run.trace, covariance=rw_cov)
    if joint_se:
        result.se_method = JOINT_SE_METHOD
    return result, partial_out


def finalize(job: CalibrationJob, banks: BankPublisher, work: ObjectStore) -> CalibrationJob:
    """Candidate bank version, calibration report and quality gates (step 4)."""
    r = job.request
    base = banks.bank(r.bank_id, job.base_version)
    result, partial = results_of(job, work)
    if base.scale != 1.0:
        result = dataclasses.replace(result, a=result.a / base.scale, se_a=result.se_a / base.scale)
    item_ids = [it.item_id for it in base.items]
    pretest = np.array([it.status == "pretest" for it in base.items])
    version = job.base_version + 1
    bank, report = calibrated_bank(result, item_ids, base, base.bank_id, version, pretest,
                                   r.promote_se_b, r.promote_n, r.promote_rmsd)
    params = _Params.load(work, job.params_key(job.iteration))
    left_out = {item_ids[j]: why for j, why in result.left_out.items()}
    if params.partial is not None:
        left_out.update({item_ids[j]: why for j, why in params.partial.left_out.items()})
        bank = bank.model_copy(update={"items": [
            it.model_copy(update={"calibration_note": f"left out: {params.partial.left_out[j]}"})
            if j in params.partial.left_out else it for j, it in enumerate(bank.items)]})
    if partial is not None:
        estimates, positions = partial
        ids = [item_ids[j] for j in positions]
        bank, rows, promoted = with_partial_estimates(bank, estimates, ids, r.promote_se_b, r.promote_n,
                                                      r.promote_rmsd)
        by_id = {row["item_id"]: row for row in rows}
        report["items"] = [by_id.get(row["item_id"], row) for row in report["items"]]
        report["promoted"] = [*report["promoted"], *promoted]
    bank = ResponseTimes.load(work, job.prefix).applied_to(bank)
    failures = []
    if not result.converged:
        failures.append(f"EM did not converge in {job.iteration} cycles (max change {job.change})")
    moved = [old.item_id for old, new in zip(base.items, bank.items, strict=True)
             if old.status != "pretest" and (old.a, old.b, old.c) != (new.a, new.b, new.c)]
    if moved:
        failures.append(f"{len(moved)} operational item(s) moved: {', '.join(moved[:5])}")
    if job.n_responses < r.min_run_responses:
        failures.append(f"{job.n_responses} responses < the minimum {r.min_run_responses}")
    # fixed items stay fixed; whether their answers still agree with them is reported, not gated
    run_partial = _Params.load(work, job.params_key(job.iteration)).partial  # the run's partial-credit items
    drift_check = operational_drift(base, summed_counts(job, work), job.settings().quadrature()[0], r.promote_n,
                                    run_partial.index if run_partial is not None else None)
    summary = {**result.summary(), "run_id": job.run_id, "bank_id": r.bank_id, "base_version": job.base_version,
               "candidate_version": version, "sessions": job.n_sessions, "shards": job.n_shards,
               "answers_out_of_range": job.n_out_of_range,
               "since": r.since.isoformat() if r.since else None,
               "through": job.through.isoformat() if job.through else None,
               "gates_passed": not failures, "gate_failures": failures, "promoted": report["promoted"],
               "left_out": left_out, "drift": drift_check,
               "reliability": bank_reliability(base, bank, job.median_length)}  # domain/health.py
    pretest_ids = {it.item_id for it in base.items if it.status == "pretest"}
    work.put(report_key(r.bank_id, job.run_id), json.dumps(
        {"summary": summary, "items": [row for row in report["items"] if row["item_id"] in pretest_ids]},
        indent=1).encode())
    work.put(f"{job.prefix}bank.json", bank.model_dump_json(exclude_none=True).encode())
    return job.model_copy(update={"gates_passed": not failures, "gate_failures": failures,
                                  "new_version": version, "promoted": report["promoted"]})


def publish(job: CalibrationJob, banks: BankPublisher, work: ObjectStore) -> CalibrationJob:
    """Write the new version and move the pointer (step 5), if the gates passed and the
    pointer is still where the run found it."""
    if not job.gates_passed:
        raise GatesFailed("; ".join(job.gate_failures) or "quality gates not evaluated")
    current = banks.current_version(job.request.bank_id)
    if current != job.base_version:
        raise BankMovedOn(f"bank {job.request.bank_id} moved from v{job.base_version} to v{current} "
                          "while this run calibrated; nothing published")
    bank = ItemBank.model_validate_json(work.get(f"{job.prefix}bank.json"))
    if job.promoted:  # promoted items join the exposure allocation before they go live
        from .exposure import after_promotion

        bank, _ = after_promotion(bank)
    banks.publish(bank, make_current=True)
    work.put(f"calibration/{job.request.bank_id}/last.json", json.dumps(
        {"run_id": job.run_id, "version": bank.version,
         "through": job.through.isoformat() if job.through else None}).encode())
    return job


def last_calibrated(work: ObjectStore, bank_id: str) -> datetime | None:
    """The last published run's newest history record (None: never calibrated)."""
    try:
        doc = json.loads(work.get(f"calibration/{bank_id}/last.json"))
    except KeyError:
        return None
    return datetime.fromisoformat(doc["through"]) if doc.get("through") else None


def run_in_process(request: CalibrationRequest, banks: BankPublisher, history: ObjectStore, work: ObjectStore,
                   run_id: str, map_: Callable[..., Any] = map, publish_result: bool = True,
                   progress: Callable[[CalibrationJob], None] | None = None) -> CalibrationJob:
    """The state machine's loop in one process (``map_`` runs the E-steps, e.g. a pool's map)."""
    job = prepare(request, banks, history, work, run_id)
    if job.phase == "nothing":
        return job
    cache: dict[str, Any] = {}
    while job.phase != "done":
        keys = work.list(job.shard_prefix)
        list(map_(lambda key, j=job: e_step(ShardTask(job=j, key=key), work, cache), keys))
        job = m_step(job, work)
        if progress:
            progress(job)
    job = finalize(job, banks, work)
    if publish_result and job.gates_passed:
        job = publish(job, banks, work)
    return job
