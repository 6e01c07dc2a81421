"""The use cases: one function per API route and per state of the answer state machine.

Handlers parse their input, call one of these with the adapters, and return the result. The
state machine passes a :class:`Step` (JSON) from state to state.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ConfigDict, ValidationError

from .access import Forbidden
from .api import SessionSummary, SessionView, StartSessionRequest, TrajectoryPoint
from .base import Message, first_error
from .events import MAX_EVENT_BYTES, MAX_EVENT_DEPTH, AnswerEvent, contract_problem, nesting_depth
from .history import HistoryRecord
from .ports import (
    BankStore,
    Conflict,
    HistorySink,
    NotFound,
    Quarantine,
    SessionRepository,
    StudentRepository,
)
from .scoring import score_choice
from .session import (
    Duplicate,
    Rejection,
    SessionState,
    apply_answer,
    check_answer,
    choose_next_item,
    end_condition,
    event_digest,
    finish,
    new_session,
)
from .stored import unpack_outbox
from .student import StudentProfile, seen_after

MAX_CONFLICT_ATTEMPTS = 5
# how GET /sessions/{id} reads the session: the tablet's poll, where a stale answer only delays it
POLL_READ: Literal["strong", "eventual"] = "eventual"


class TooManyConflicts(Exception):
    """Raised after MAX_CONFLICT_ATTEMPTS re-reads: the execution fails and the Pipe retries."""


class Step(Message):
    """The state machine's working document for one answer."""

    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any]
    attempt: int = 0
    # expired: the answer came after the session's time limit; it is rejected, and CommitStep
    # finishes the session with stop reason time_limit
    outcome: Literal["applied", "duplicate", "rejected", "expired"] | None = None
    reason: str | None = None
    event: AnswerEvent | None = None
    session: SessionState | None = None
    expected_version: int | None = None
    theta_before: float | None = None
    se_before: float | None = None
    stop_reason: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def decode_record(record: dict[str, Any]) -> tuple[str, AnswerEvent]:
    """The raw text and the parsed event of a Kinesis record (Pipe shape: base64 ``data``).

    Raises :class:`Rejection` with the reason when the record is not a valid answer event.
    """
    data = record.get("data")
    if not isinstance(data, str):
        raise Rejection("record has no data")
    try:
        raw_bytes = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise Rejection("record data is not base64") from None
    raw = raw_bytes.decode("utf-8", errors="replace")
    if len(raw_bytes) > MAX_EVENT_BYTES:
        raise Rejection(f"payload of {len(raw_bytes)} bytes exceeds {MAX_EVENT_BYTES}")
    try:
        payload = json.loads(raw_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Rejection("payload is not JSON") from None
    except RecursionError:
        raise Rejection("payload is nested too deeply") from None
    if nesting_depth(payload) > MAX_EVENT_DEPTH:
        raise Rejection("payload is nested too deeply")
    problem = contract_problem(payload)
    if problem:
        raise Rejection(problem)
    try:
        return raw, AnswerEvent.model_validate(payload)
    except ValidationError as exc:
        raise Rejection(f"invalid event: {event_error(exc)}") from None


def event_error(exc: ValidationError) -> str:
    """The first problem of an answer event, in words: the field and what is wrong with it."""
    errors = exc.errors()
    if errors and errors[0]["loc"][:1] == ("choice",):
        return "choice: must be an option id as shown (such as \"A\") or the number entered"
    return first_error(exc)


def update_theta(step: Step, sessions: SessionRepository, banks: BankStore) -> Step:
    """UpdateTheta: validate, de-duplicate and score the answer; re-estimate theta."""
    if step.attempt > MAX_CONFLICT_ATTEMPTS:
        raise TooManyConflicts(f"session changed under {step.attempt} attempts in a row")
    out = Step(record=step.record, attempt=step.attempt)
    try:
        _, event = decode_record(step.record)
        out.event = event
        state = sessions.get(event.session_id)
        if state is None:
            raise Rejection("unknown session")
        out.session = state
        out.theta_before, out.se_before = state.theta, state.se
        now = _now()
        if state.expired(now) and state.student_id == event.student_id:
            # the session ends here; the answer itself is refused (after check_answer, so that
            # a duplicate of an answer applied in time is still just a duplicate)
            with contextlib.suppress(Rejection):
                check_answer(state, event)
            out.session = finish(state, "time_limit", now, banks.bank(state.bank_id, state.bank_version))
            out.expected_version = state.version
            out.stop_reason = "time_limit"
            out.outcome = "expired"
            out.reason = f"arrived after the session's time limit ({state.expires_at:%H:%M:%S} UTC)"
            return out
        bank = banks.bank(state.bank_id, state.bank_version)
        out.session = apply_answer(state, event, bank, now)
        out.expected_version = state.version
        out.outcome = "applied"
    except Duplicate as dup:
        out.outcome, out.reason = "duplicate", str(dup)
    except Rejection as rej:
        out.outcome, out.reason = "rejected", str(rej)
    return out


def check_end_condition(step: Step, banks: BankStore) -> Step:
    """CheckEndCondition: which stopping rule fires, if any."""
    state = _require(step)
    step.stop_reason = end_condition(state, banks.bank(state.bank_id, state.bank_version))
    return step


def select_next_item(step: Step, banks: BankStore) -> Step:
    """SelectNextItem: serve the next item, or finish when nothing is left."""
    state = _require(step)
    bank = banks.bank(state.bank_id, state.bank_version)
    nxt = choose_next_item(state, bank)
    if nxt is None:
        step.stop_reason = "bank_exhausted"
        step.session = finish(state, "bank_exhausted", _now(), bank)
    else:
        step.session = nxt
    return step


def finish_session(step: Step, banks: BankStore) -> Step:
    """FinishSession: close the session with the rule that fired, judging its person fit and
    effort (domain/effort.py)."""
    state = _require(step)
    step.session = finish(state, step.stop_reason or "finished", _now(), banks.bank(state.bank_id, state.bank_version))
    return step


def _require(step: Step) -> SessionState:
    if step.session is None or step.outcome != "applied":
        raise ValueError("this state needs an applied step with a session")
    return step.session


def _committable(step: Step) -> SessionState:
    """The session a commit writes: an applied answer's, or one its late answer finished."""
    if step.session is None or step.outcome not in ("applied", "expired"):
        raise ValueError("CommitStep needs an applied or expired step with a session")
    return step.session


def answer_record(step: Step) -> HistoryRecord:
    """The history record of one processed answer."""
    ev, s = step.event, step.session
    applied = step.outcome == "applied"
    served = None
    if ev is not None and s is not None and ev.seq <= len(s.served):
        served = s.served[ev.seq - 1]
    nxt = s.current if s is not None and applied else None
    return HistoryRecord(
        record_type="answer",
        outcome="duplicate" if step.outcome == "duplicate" else "applied" if applied else "rejected",
        reason=step.reason,
        processed_at=_now(),
        event_id=str(ev.event_id) if ev else None,
        session_id=ev.session_id if ev else None,
        student_id=ev.student_id if ev else None,
        test_id=s.test_id if s else None, bank_id=s.bank_id if s else None,
        bank_version=s.bank_version if s else None,
        item_id=ev.item_id if ev else None, seq=ev.seq if ev else None,
        choice=(ev.choice if isinstance(ev.choice, str) else json.dumps(ev.choice)) if ev else None,
        option=served.option if served is not None and applied else None,
        response=served.response if served is not None and applied else None,
        scored=(not served.pretest) if served is not None and applied else None,
        answered_at=ev.answered_at if ev else None,
        response_time_ms=ev.response_time_ms if ev else None,
        seconds=served.seconds if served is not None and applied else None,
        theta_before=step.theta_before, se_before=step.se_before,
        theta_after=s.theta if s and applied else None,
        se_after=s.se if s and applied else None,
        next_item_id=nxt.item_id if nxt else None,
    )


def finished_records(state: SessionState) -> list[HistoryRecord]:
    """What a finished session adds to the history: its session record, and when its policy
    reports group variables, a groups record (shipped apart, to the prefix only analytics reads)."""
    records = [session_record(state)]
    if state.groups:
        records.append(HistoryRecord(record_type="groups", outcome="finished", processed_at=_now(),
                                     session_id=state.session_id, student_id=state.student_id,
                                     test_id=state.test_id, groups=json.dumps(state.groups, sort_keys=True)))
    return records


def session_record(state: SessionState) -> HistoryRecord:
    """The history record of a finished session, with its reported score and level."""
    scale_score, scale_se = state.policy.scale.score(state.theta, state.se)
    return HistoryRecord(
        record_type="session", outcome="finished", processed_at=_now(),
        session_id=state.session_id, student_id=state.student_id, test_id=state.test_id,
        bank_id=state.bank_id, bank_version=state.bank_version,
        theta_after=state.theta, se_after=state.se, items_answered=state.scored_answered,
        stop_reason=state.stop_reason, scale_score=scale_score, scale_se=scale_se,
        level=state.policy.level(state.theta),
        blueprint_version=state.policy.blueprint.version if state.policy.blueprint is not None else None,
        relaxed=json.dumps([r.model_dump() for r in state.relaxed]) if state.relaxed else None,
        person_fit=state.person_fit, effort=state.effort,
        rapid_guesses=state.rapid_guesses if state.effort is not None else None,
        flags=json.dumps(state.flags) if state.flags else None,
        accommodations=state.accommodations.label() if state.accommodations else None,
    )


def commit_step(step: Step, sessions: SessionRepository) -> dict[str, Any]:
    """CommitStep: one conditional write of the session, carrying the step's history records
    as its outbox (plus the student's profile when the session finished).

    The history is delivered from that write (:func:`ship_history`, fed by the table's stream),
    so a process that dies after the write loses nothing, and one that dies before it wrote
    nothing. A failed condition means another execution moved the session on: if that write
    was this very answer (a retried commit whose first write landed), its records are already
    on their way; otherwise :class:`Conflict` sends the state machine back to UpdateTheta.
    """
    state = _committable(step)
    assert step.expected_version is not None and step.event is not None
    new = state.model_copy(update={"version": step.expected_version + 1, "updated_at": _now()})
    step.session = new
    records = [answer_record(step)]
    if new.status == "finished":
        records.extend(finished_records(new))
    try:
        sessions.commit(new, step.expected_version, finished_profile(new), outbox=records)
    except Conflict:
        stored = sessions.get(new.session_id)
        ev = step.event
        if step.outcome == "expired":
            landed = stored is not None and stored.status == "finished" and stored.stop_reason == "time_limit"
        else:
            landed = (
                stored is not None and ev.seq <= len(stored.served)
                and stored.served[ev.seq - 1].event_digest == event_digest(str(ev.event_id))
            )
        if not landed:
            raise
        new = stored  # type: ignore[assignment]
    return {"outcome": step.outcome, "session_id": new.session_id, "seq": step.event.seq,
            "status": new.status, "version": new.version, "reason": step.reason}


def ship_history(outboxes: list[tuple[str, dict[str, Any]]], history: HistorySink) -> int:
    """ShipHistory: the history records of session writes into the history. Each write's
    ``outbox`` comes as the table's stream delivers it, with what the records share with the
    state written beside them (:func:`~irtcat.domain.stored.outbox_context`). At least once: a
    stream retry sends them again, and readers de-duplicate on ``event_id`` (and
    ``record_type``). Returns the number of records shipped."""
    records = [r for text, context in outboxes for r in unpack_outbox(text, context)]
    if records:
        history.put(records)
    return len(records)


def finished_profile(state: SessionState) -> StudentProfile | None:
    """The profile a finished session leaves: its ability, and the items it served added to
    those the student had seen in the test (None while the session is active)."""
    if state.status != "finished":
        return None
    served = [x.item_id for x in state.served]
    return StudentProfile(student_id=state.student_id, theta=state.theta, se=state.se,
                          last_session_id=state.session_id, updated_at=_now(),
                          seen={state.test_id: seen_after(state.excluded, served)})


def record_outcome(step: Step, history: HistorySink, quarantine: Quarantine) -> dict[str, Any]:
    """RecordOutcome: a duplicate is acknowledged (history only); a rejected answer is recorded
    with its reason and its raw record parked in quarantine for an operator to replay."""
    rec = answer_record(step)
    key = None
    if step.outcome == "rejected":
        raw = _raw_text(step.record)
        key = quarantine.put(raw, step.reason or "rejected", {
            k: step.record.get(k) for k in ("partitionKey", "sequenceNumber", "eventID", "eventSourceARN")
        })
        rec.raw_event = raw[:4096]
        if rec.event_id is None:  # refused before it parsed as an event: readers still de-duplicate on it
            rec.event_id = readable_event_id(raw)
    history.put([rec])
    return {"outcome": step.outcome, "reason": step.reason, "quarantine_key": key}


def screen_batch(records: list[Any], history: HistorySink, quarantine: Quarantine) -> list[dict[str, Any]]:
    """ScreenBatch, the Pipe's enrichment: the records of a batch that are well-formed answer
    events pass on unchanged and in order; every other record is rejected here, with its reason,
    and parked in quarantine as RecordOutcome parks a rejected answer (raw payload in S3, a
    rejection record in the history). That covers a record that is not base64, over
    ``MAX_EVENT_BYTES`` (Kinesis takes up to 1 MiB, a Step Functions input 256 KiB), binary or
    not UTF-8 JSON, nested too deeply, in another contract version or failing the schema. Such a
    record therefore never reaches the state machine, so it can neither fail a batch nor stall
    its shard. UpdateTheta checks every record again (the second line)."""
    passed = []
    for record in records:
        if not isinstance(record, dict):
            record = {"data": None, "unexpected": json.dumps(record, default=str)[:4096]}
        try:
            decode_record(record)
        except Rejection as exc:
            record_outcome(Step(record=record, outcome="rejected", reason=str(exc)), history, quarantine)
            continue
        passed.append(record)
    return passed


def by_session(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A batch's records grouped by session (the partition key), each group in stream order and
    the groups in the order of their first record: ``[{"session_id": ..., "records": [...]}]``.
    The state machine runs the groups side by side and each group's answers one after another,
    so a session's answers stay in order while no answer waits behind another session's."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(str(record.get("partitionKey", "")), []).append(record)
    return [{"session_id": session, "records": group} for session, group in groups.items()]


def readable_event_id(raw: str) -> str | None:
    """The ``event_id`` of a payload refused as an answer, when it has a well-formed one."""
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    value = payload.get("event_id") if isinstance(payload, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _raw_text(record: dict[str, Any]) -> str:
    data = record.get("data")
    if isinstance(data, str):
        try:
            return base64.b64decode(data).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return data
    return json.dumps(record, default=str)


class NotServing(Exception):
    """An answer the session cannot take now: finished, past its time limit, or not for the
    item being served (409 at the API, with the reason)."""


class NotAnAnswer(Exception):
    """A choice that cannot answer the item served: not one of its options, or not a number
    for a numeric-entry item (400 at the API, with the reason; nothing about the key)."""


def admit_answer(event: AnswerEvent, sessions: SessionRepository, banks: BankStore) -> bool:
    """The API's check before an answer reaches the stream (one read of the session; the bank
    version is cached per container): the session exists and belongs to the event's student,
    is active and within its time limit, ``seq``/``item_id`` are the item it serves, and the
    choice is one the item can take. Returns False for an answer already applied under this
    very ``event_id`` (a retried submit: acknowledge, publish nothing). The pipeline checks
    again.

    Raises :class:`NotFound`, :class:`~irtcat.domain.access.Forbidden`, :class:`NotServing` or
    :class:`NotAnAnswer`.
    """
    state = sessions.get(event.session_id)
    if state is None:
        raise NotFound(f"session {event.session_id} not found")
    if state.student_id != event.student_id:
        raise Forbidden("this session belongs to another student")
    if event.seq <= len(state.served) and state.served[event.seq - 1].event_digest == event_digest(str(event.event_id)):
        return False
    if state.expired(_now()):
        raise NotServing(f"the session's time limit passed at {state.expires_at:%H:%M:%S} UTC; read the session "
                         "for its result")
    try:
        check_answer(state, event)
    except Duplicate as dup:
        raise NotServing(f"already answered: {dup}") from None
    except Rejection as rej:
        raise NotServing(str(rej)) from None
    try:
        score_choice(banks.bank(state.bank_id, state.bank_version).item(event.item_id), event.choice,
                     state.secret, event.seq)  # the score is not used here, only the validation
    except ValueError as exc:
        raise NotAnAnswer(str(exc)) from None
    return True


def start_session(
    request: StartSessionRequest,
    sessions: SessionRepository,
    students: StudentRepository,
    banks: BankStore,
    warn: Callable[[str], None] | None = None,
) -> tuple[SessionView, bool]:
    """POST /sessions: a new session on the test's current bank version, theta starting at the
    student's last ability (or the prior), with its first item; and True. A student has at most
    one active session per test: while one is active (and within its time limit) it is returned
    as it stands, with False, so that a tablet that lost its session picks it up again. ``warn``
    hears when the test's policy asks for exposure control its bank does not carry."""
    test = banks.test(request.test_id)
    now = _now()
    for _ in range(MAX_CONFLICT_ATTEMPTS):
        latest = sessions.latest_for(request.student_id, test.test_id)
        if latest is not None and latest.status == "active" and not latest.expired(now):
            return latest.view(banks.bank(latest.bank_id, latest.bank_version), now), False
        bank = banks.bank(test.bank_id, banks.current_version(test.bank_id))
        uncontrolled = test.policy.exposure_problem(bank) if warn is not None else None
        if uncontrolled and warn is not None:
            warn(uncontrolled)
        profile = students.get(request.student_id)
        state = new_session(
            session_id=str(uuid.uuid4()), student_id=request.student_id,
            policy=test.policy.model_copy(update={"test_id": test.test_id}), bank=bank,
            theta_start=profile.theta if profile else None, now=now,
            seen=profile.seen_in(test.test_id) if profile else None, policy_version=test.policy_version,
            accommodations=profile.accommodations_for(test.test_id) if profile else None,
            groups=profile.groups if profile else None,
        )
        try:
            # finished at once (bank_exhausted) when the student has seen every item
            sessions.create(state, replaces=latest.session_id if latest else None)
        except Conflict:
            continue  # another start of the same student won: return that one
        return state.view(bank, now), True
    raise TooManyConflicts(f"{request.student_id} started {request.test_id} {MAX_CONFLICT_ATTEMPTS} times at once")


def get_session(session_id: str, sessions: SessionRepository, banks: BankStore,
                history: HistorySink | None = None,
                authorize: Callable[[str], None] | None = None) -> SessionView:
    """GET /sessions/{id}: the item to answer next with its content, or the final result. A
    session read after its time limit is finished here with stop reason ``time_limit`` (one
    conditional write, and its history record when ``history`` is given). ``authorize`` is
    called with the session's student before anything is written (it raises to refuse). The
    read is the tablet's poll: eventually consistent (:data:`POLL_READ`), since a stale answer
    only makes the tablet poll again."""
    state = sessions.get(session_id, consistent=POLL_READ == "strong")
    if state is None:
        raise NotFound(f"session {session_id} not found")
    if authorize is not None:
        authorize(state.student_id)
    now = _now()
    if state.expired(now):
        done = finish(state, "time_limit", now, banks.bank(state.bank_id, state.bank_version)).model_copy(
            update={"version": state.version + 1})
        try:
            sessions.commit(done, state.version, finished_profile(done))
            if history is not None:
                history.put(finished_records(done))
            state = done
        except Conflict:  # an answer or another read moved it on: show what is stored now
            state = sessions.get(session_id) or state
    bank = banks.bank(state.bank_id, state.bank_version) if state.status == "active" else None
    return state.view(bank, now)


def list_sessions(test_id: str, sessions: SessionRepository, limit: int = 50) -> list[SessionSummary]:
    """GET /tests/{test_id}/sessions: the test's recent sessions with their theta trajectories
    (scored answers only) for the teacher view."""
    return [
        SessionSummary(
            session_id=s.session_id, student_id=s.student_id, test_id=s.test_id, status=s.status,
            answered=s.answered, theta=s.theta, se=s.se,
            **dict(zip(("scale_score", "scale_se"), s.policy.scale.score(s.theta, s.se), strict=True)),
            level=s.policy.level(s.theta) if s.status == "finished" else None,
            stop_reason=s.stop_reason, created_at=s.created_at, flags=list(s.flags), effort=s.effort,
            person_fit=s.person_fit, accommodations=s.accommodations.label() if s.accommodations else None,
            trajectory=[TrajectoryPoint(seq=x.seq, theta=x.theta, se=x.se) for x in s.served
                        if x.response is not None and not x.pretest and x.theta is not None and x.se is not None],
        )
        for s in sessions.list_by_test(test_id, limit)
    ]
