"""Session state and the logic of one adaptive step, on top of the engine (:mod:`irt.cat`).

The state machine runs the step in stages (UpdateTheta -> CheckEndCondition -> SelectNextItem
or FinishSession -> CommitStep), passing the :class:`SessionState` from one to the next; each
stage here is a pure function of the state, the bank and the answer, so a retried stage
computes the same result (item selection is seeded by session and position).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field

from ..irt.cat import record_answer, restore
from ..irt.exposure import draw_ineligible, exposure_eligibility
from ..irt.selection import select_next
from ..irt.state import PRETEST, CatState
from ..irt.stopping import check_stop
from .api import OptionView, RelaxedRule, ResponseView, ServedItemView, SessionResult, SessionView
from .bank import ItemBank
from .base import Message
from .effort import answer_seconds, is_rapid, session_checks
from .events import AnswerEvent
from .policy import TestPolicy
from .scoring import score_choice, shown_options
from .student import Accommodations

# an answered position keeps a digest of its event_id, not the id: enough to tell a redelivery
# from another answer (two ids share a 6-byte digest with probability 2^-48)
DIGEST_BYTES = 6


def event_digest(event_id: str) -> str:
    """The short digest of an answer's ``event_id`` kept per answered position (8 characters)."""
    return base64.b64encode(hashlib.sha256(event_id.encode()).digest()[:DIGEST_BYTES]).decode()


class ServedItem(Message):
    """One item served in a session, and its answer once it is in: what the next steps need.
    What the history needs of the answer (the choice, times) travels in the step's outbox."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    item_id: str
    pretest: bool = False
    response: int | None = None  # the score of the choice: 0/1, or the category
    event_digest: str | None = None  # :func:`event_digest` of the answer's event_id
    theta: float | None = None  # after this answer
    se: float | None = None
    # the answer's time: the tablet's response_time_ms bounded by the server's own measure
    seconds: float | None = None
    # the bank's option index the choice meant (multiple choice), for the step's history record
    # only: not stored with the session
    option: int | None = None


class SessionState(Message):
    """Everything about one running or finished session (one DynamoDB item).

    ``version`` is the optimistic-locking counter: every commit writes ``version + 1`` on the
    condition that the stored version is still ``version``.
    """

    model_config = ConfigDict(extra="forbid")

    session_id: str
    student_id: str
    test_id: str
    bank_id: str
    bank_version: int
    policy: TestPolicy
    # the published policy's version (the stored session refers to it); None: a session whose
    # test had no versioned policy carries the policy itself
    policy_version: int | None = None
    status: Literal["active", "finished"] = "active"
    version: int = 0
    theta_start: float
    theta: float
    se: float
    served: list[ServedItem] = Field(default_factory=list)
    blocked: list[str] = Field(default_factory=list)
    # items served to this student in earlier sessions of the test (never served again)
    excluded: list[str] = Field(default_factory=list)
    # seeds the option order shown at each position; never leaves the server
    secret: str = Field(default_factory=lambda: secrets.token_hex(16))
    stop_reason: str | None = None
    # shadow-test selection (a blueprint): the last shadow test (the next one's starting point)
    # and the rules that gave way so far
    shadow_test: list[str] = Field(default_factory=list)
    relaxed: list[RelaxedRule] = Field(default_factory=list)
    # whether it was answered in earnest, judged when it finishes (domain/effort.py)
    person_fit: float | None = None
    effort: float | None = None
    rapid_guesses: int = 0
    flags: list[str] = Field(default_factory=list)
    accommodations: Accommodations | None = None  # copied from the student's profile at the start
    groups: dict[str, str] = Field(default_factory=dict)  # the profile's groups the policy reports
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    finished_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        """An active session past its time limit."""
        return self.status == "active" and self.expires_at is not None and now >= self.expires_at

    @property
    def current(self) -> ServedItem | None:
        """The item being served (awaiting its answer), if any."""
        if self.served and self.served[-1].response is None:
            return self.served[-1]
        return None

    @property
    def answered(self) -> int:
        return sum(1 for s in self.served if s.response is not None)

    @property
    def scored_answered(self) -> int:
        return sum(1 for s in self.served if s.response is not None and not s.pretest)

    def view(self, bank: ItemBank | None = None, now: datetime | None = None) -> SessionView:
        """What the tablet reads: the next item with its content (options in this session's
        order, never a key), or the final result; for a timed session, the time left."""
        item = None
        cur = self.current
        if self.status == "active" and cur is not None:
            content = bank.item(cur.item_id) if bank is not None else None
            options = responses = passage = None
            if content is not None and content.responses is not None:
                responses = [ResponseView(id=r.id, kind=r.kind, prompt=r.prompt, max_choices=r.max_choices or None,
                                          options=[OptionView(id=oid, text=text) for oid, text in
                                                   r.shown(self.secret, cur.seq, content.item_id)]
                                          if r.options is not None else None) for r in content.responses]
            elif content is not None and content.kind == "choice":
                options = [OptionView(id=oid, text=text) for oid, text in shown_options(self.secret, cur.seq, content)]
            if content is not None and bank is not None:
                passage = bank.stimuli.get(content.attributes.get("passage", ""))
            item = ServedItemView(item_id=cur.item_id, seq=cur.seq, kind=content.kind if content else None,
                                  stem=content.stem if content else None, options=options, responses=responses,
                                  passage=passage,
                                  partial_credit=bool(content is not None and content.model is not None))
        remaining = None
        if self.expires_at is not None and self.status == "active":
            remaining = max(0.0, (self.expires_at - (now or datetime.now(UTC))).total_seconds())
        result = None
        if self.status == "finished" and self.finished_at is not None:
            scale_score, scale_se = self.policy.scale.score(self.theta, self.se)
            result = SessionResult(theta=self.theta, se=self.se, scale_score=scale_score, scale_se=scale_se,
                                   level=self.policy.level(self.theta), items_answered=self.scored_answered,
                                   stop_reason=self.stop_reason or "", finished_at=self.finished_at,
                                   relaxed=list(self.relaxed), person_fit=self.person_fit, effort=self.effort,
                                   rapid_guesses=self.rapid_guesses, flags=list(self.flags))
        return SessionView(session_id=self.session_id, student_id=self.student_id, test_id=self.test_id,
                           bank_id=self.bank_id, status=self.status, answered=self.answered, item=item, result=result,
                           expires_at=self.expires_at, remaining_seconds=remaining,
                           accommodations=self.accommodations)


class Rejection(Exception):
    """An answer that can never be applied; the message is the reason recorded."""


class Duplicate(Exception):
    """An answer already applied (same event_id, or its seq already answered)."""


def _rng(session_id: str, position: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{session_id}:{position}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def counts(state: SessionState, bank: ItemBank, served: ServedItem) -> bool:
    """Whether an answered item counts toward the score: not pretest, and not a rapid guess
    when the policy scores effort-moderated."""
    if served.response is None or served.pretest:
        return False
    return not (state.policy.scoring.exclude_rapid_guesses and is_rapid(bank, served.item_id, served.seconds))


def _engine_state(state: SessionState, bank: ItemBank) -> CatState:
    """Rebuild the engine's one-row state from the stored session."""
    engine = bank.engine
    idx = engine.index
    served = np.array([idx[s.item_id] for s in state.served], dtype=np.int64)
    scored = [s for s in state.served if counts(state, bank, s)]
    cat = restore(
        engine, state.policy.cat_config(), served,
        np.array([idx[s.item_id] for s in scored], dtype=np.int64),
        np.array([s.response for s in scored], dtype=np.int64),
        state.theta_start,
    )
    for item_id in (*state.blocked, *state.excluded):
        j = idx.get(item_id)
        if j is not None:  # an item seen earlier may have left the bank since
            cat.blocked[0, j] = True
    return cat


def new_session(
    session_id: str,
    student_id: str,
    policy: TestPolicy,
    bank: ItemBank,
    theta_start: float | None,
    now: datetime | None = None,
    seen: list[str] | None = None,
    policy_version: int | None = None,
    accommodations: Accommodations | None = None,
    groups: dict[str, str] | None = None,
) -> SessionState:
    """A new session serving its first item.

    ``theta_start`` (the student's last ability) only steers the first choice; the estimator
    keeps the policy's prior so a student's history never biases this test's score. ``seen``:
    the items this student was served in earlier sessions of the test, excluded when the
    policy says so. When no item is left to serve, the session starts finished with stop
    reason ``bank_exhausted`` (a student who has seen the whole bank), never an error.
    ``accommodations`` are copied into the session; a time limit scales by ``extended_time``.
    ``groups``: the student's group variables, of which the session keeps those the policy
    reports (``report_groups``).
    """
    now = now or datetime.now(UTC)
    start = policy.prior.mean if theta_start is None else float(np.clip(theta_start, -4, 4))
    limit: float | None = policy.stopping.time_limit_seconds
    if limit and accommodations is not None:
        limit = limit * accommodations.extended_time
    state = SessionState(
        session_id=session_id, student_id=student_id, test_id=policy.test_id, bank_id=bank.bank_id,
        bank_version=bank.version, policy=policy, policy_version=policy_version, theta_start=start, theta=start,
        se=policy.prior.sd, created_at=now, updated_at=now,
        excluded=list(seen or []) if policy.exclude_seen_items else [],
        expires_at=now + timedelta(seconds=limit) if limit else None, accommodations=accommodations,
        groups={k: v for k, v in (groups or {}).items() if k in policy.report_groups},
    )
    if not bank.engine.operational.any():
        raise Rejection("the bank has no operational item for this test")
    chosen = choose_next_item(state, bank)
    if chosen is None:
        return finish(state, "bank_exhausted", now, bank)
    return chosen


def check_answer(state: SessionState, event: AnswerEvent) -> None:
    """Raise :class:`Duplicate` or :class:`Rejection` unless the answer applies to ``state``."""
    if state.student_id != event.student_id:
        raise Rejection("session belongs to another student")
    digest = event_digest(str(event.event_id))
    for s in state.served:
        if s.event_digest == digest:
            raise Duplicate("event_id already applied")
    if event.seq <= len(state.served) and state.served[event.seq - 1].response is not None:
        raise Duplicate(f"seq {event.seq} already answered")
    if state.status == "finished":
        raise Rejection("session is finished")
    cur = state.current
    if cur is None or cur.seq != event.seq:
        expected = cur.seq if cur else "none"
        raise Rejection(f"seq {event.seq} is not the item being served (expected {expected})")
    if cur.item_id != event.item_id:
        raise Rejection(f"item {event.item_id} is not the item served at seq {event.seq}")


def apply_answer(state: SessionState, event: AnswerEvent, bank: ItemBank, now: datetime | None = None
                 ) -> SessionState:
    """UpdateTheta: score the choice against the bank's key, record it with its time (bounded by
    the server's measure, ``now`` less the commit that served the item) and re-estimate theta
    (pretest answers, and rapid guesses under effort-moderated scoring, are scored and recorded,
    never used for theta)."""
    check_answer(state, event)
    try:
        scored = score_choice(bank.item(event.item_id), event.choice, state.secret, event.seq)
    except ValueError as exc:  # InvalidChoice, or an item without a scoring rule
        raise Rejection(str(exc)) from None
    engine = bank.engine
    idx = engine.index[event.item_id]
    seconds = answer_seconds(event.response_time_ms, state.updated_at, now or datetime.now(UTC))
    theta, se = state.theta, state.se  # a pretest answer is recorded but never scored
    rapid_excluded = state.policy.scoring.exclude_rapid_guesses and is_rapid(bank, event.item_id, seconds)
    if engine.status[idx] != PRETEST and not rapid_excluded:
        cat = _engine_state(state, bank)
        record_answer(cat, engine, state.policy.cat_config(), np.array([0]), np.array([idx]),
                      np.array([scored.score]))
        theta, se = float(cat.theta[0]), float(cat.se[0])
    new = state.model_copy(deep=True)
    cur = new.served[-1]
    cur.option = scored.option
    cur.response = scored.score
    cur.event_digest = event_digest(str(event.event_id))
    cur.seconds = round(seconds, 1)
    new.theta, new.se = theta, se
    cur.theta, cur.se = theta, se
    return new


def end_condition(state: SessionState, bank: ItemBank) -> str | None:
    """CheckEndCondition: the stopping rule that fires now, or None to go on."""
    cat = _engine_state(state, bank)
    reason = check_stop(cat, bank.engine, state.policy.cat_config(), np.array([0]))[0]
    return str(reason) or None


def choose_next_item(state: SessionState, bank: ItemBank) -> SessionState | None:
    """SelectNextItem: serve the next item (None when nothing is left to serve)."""
    engine = bank.engine
    cat = _engine_state(state, bank)
    if state.shadow_test:
        cat.shadow[0] = np.array([engine.index[i] for i in state.shadow_test if i in engine.index], dtype=np.int64)
    position = len(state.served) + 1
    before = cat.blocked[0].copy()
    config = state.policy.cat_config(bank)
    if exposure_eligibility(engine, config):
        # the same draw at every step of the session: it depends on the session id alone
        cat.ineligible[0] = draw_ineligible(engine.exposure_k, _rng(state.session_id, 0))
    item = select_next(cat, engine, config, np.array([0]), _rng(state.session_id, position))[0]
    if item < 0:
        return None
    new = state.model_copy(deep=True)
    newly_blocked = np.flatnonzero(cat.blocked[0] & ~before)
    new.blocked.extend(engine.item_ids[j] for j in newly_blocked)
    new.served.append(ServedItem(seq=position, item_id=engine.item_ids[item],
                                 pretest=bool(engine.status[item] == PRETEST)))
    if 0 in cat.shadow:
        new.shadow_test = [engine.item_ids[j] for j in cat.shadow[0]]
        worst = {r.rule: r.by for r in new.relaxed}
        for rule, by in cat.relaxed.get(0, {}).items():
            worst[rule] = max(worst.get(rule, 0.0), by)
        new.relaxed = [RelaxedRule(rule=k, by=v) for k, v in sorted(worst.items())]
    return new


def finish(state: SessionState, reason: str, now: datetime | None = None, bank: ItemBank | None = None
           ) -> SessionState:
    """FinishSession: the final theta and SE stand; the session takes no more answers. With the
    session's ``bank``, whether it was answered in earnest is judged (domain/effort.py)."""
    new = state.model_copy(deep=True)
    new.status = "finished"
    new.stop_reason = reason
    new.finished_at = now or datetime.now(UTC)
    if bank is not None:
        checks = session_checks([(s.item_id, s.response, s.seconds, counts(state, bank, s))
                                 for s in state.served if s.response is not None], state.theta,
                                (state.policy.prior.mean, state.policy.prior.sd), bank)
        new.person_fit, new.effort = checks["person_fit"], checks["effort"]  # type: ignore[assignment]
        new.rapid_guesses, new.flags = checks["rapid_guesses"], checks["flags"]  # type: ignore[assignment]
    return new
