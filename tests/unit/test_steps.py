"""The session step and the state machine's use cases, on in-memory adapters."""

import base64
import json
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
from irtcat.adapters.memory import (
    MemoryBanks,
    MemoryHistory,
    MemoryQuarantine,
    MemorySessions,
    MemoryStudents,
)
from irtcat.domain.api import StartSessionRequest
from irtcat.domain.events import MAX_EVENT_BYTES
from irtcat.domain.generate import generate_bank
from irtcat.domain.policy import StoppingPolicy, TestDefinition, TestPolicy
from irtcat.domain.ports import Conflict
from irtcat.domain.scoring import simulated_choice
from irtcat.domain.steps import (
    Step,
    TooManyConflicts,
    check_end_condition,
    commit_step,
    finish_session,
    record_outcome,
    screen_batch,
    select_next_item,
    start_session,
    update_theta,
)
from irtcat.irt.model import prob


class World:
    def __init__(self, policy: TestPolicy | None = None, pretest: int = 0):
        self.bank = generate_bank(120, seed=5, pretest=pretest)
        self.banks = MemoryBanks()
        self.banks.publish(self.bank)
        self.banks.put_test(TestDefinition(test_id="t", bank_id=self.bank.bank_id, policy=policy or TestPolicy()))
        self.students = MemoryStudents()
        self.history = MemoryHistory()
        self.sessions = MemorySessions(catalog=self.banks, students=self.students, history=self.history)
        self.quarantine = MemoryQuarantine()

    def start(self, student="s1"):
        return start_session(StartSessionRequest(student_id=student, test_id="t"), self.sessions, self.students,
                             self.banks)[0]

    def event(self, view_or_state, correct=1, **over):
        """An answer to the item being served: the choice that scores ``correct`` (what a
        student who knows, or does not know, the answer would pick from what the tablet shows)."""
        state = self.sessions.get(view_or_state.session_id)
        cur = state.current
        shown = [(o.id, o.text) for o in state.view(self.bank).item.options or []]
        choice = simulated_choice(self.bank.item(cur.item_id), shown, bool(correct), np.random.default_rng(cur.seq))
        ev = {"schema_version": 2, "event_id": str(uuid.uuid4()), "session_id": state.session_id,
              "student_id": state.student_id, "item_id": cur.item_id, "seq": cur.seq, "choice": choice,
              "answered_at": datetime.now(UTC).isoformat()}
        ev.update(over)
        return ev

    def process(self, event, raw: bytes | None = None):
        """Run the state machine's path for one record (as the ASL does)."""
        data = raw if raw is not None else json.dumps(event).encode()
        step = Step(record={"data": base64.b64encode(data).decode(), "partitionKey": "k"})
        for _ in range(6):
            out = update_theta(step, self.sessions, self.banks)
            if out.outcome == "expired":  # late: CommitStep finishes the session (as the ASL routes it)
                return out, commit_step(out, self.sessions)
            if out.outcome != "applied":
                return out, record_outcome(out, self.history, self.quarantine)
            out = check_end_condition(out, self.banks)
            out = finish_session(out, self.banks) if out.stop_reason else select_next_item(out, self.banks)
            try:
                return out, commit_step(out, self.sessions)
            except Conflict:
                step = Step(record=step.record, attempt=step.attempt + 1)
        raise AssertionError("unreachable")


def test_start_session_serves_first_item_with_content():
    w = World()
    view = w.start()
    assert view.status == "active" and view.answered == 0
    assert view.item.seq == 1 and view.item.stem and len(view.item.options) == 4
    assert w.sessions.get(view.session_id).version == 0


def test_a_whole_session_matches_the_engine_and_lands_in_the_profile():
    w = World(TestPolicy(stopping=StoppingPolicy(max_items=12, se_threshold=None)))
    view = w.start()
    rng = np.random.default_rng(0)
    for k in range(12):
        state = w.sessions.get(view.session_id)
        item = w.bank.item(state.current.item_id)
        p = prob(0.7, w.bank.engine.params.subset([w.bank.engine.index[item.item_id]]))[0]
        out, res = w.process(w.event(view, correct=int(rng.random() < p)))
        assert out.outcome == "applied" and res["seq"] == k + 1
    final = w.sessions.get(view.session_id)
    assert final.status == "finished" and final.stop_reason == "max_items" and final.answered == 12
    assert final.version == 12
    profile = w.students.get("s1")
    assert profile.theta == pytest.approx(final.theta) and profile.sessions_finished == 1
    finished_records = [r for r in w.history.records if r.record_type == "session"]
    assert len(finished_records) == 1 and finished_records[0].items_answered == 12
    # the next session starts from the student's last ability
    nxt = w.sessions.get(w.start().session_id)
    assert nxt.theta_start == pytest.approx(np.clip(final.theta, -4, 4))


def test_duplicate_event_id_and_seq_change_nothing():
    w = World()
    view = w.start()
    ev = w.event(view)
    w.process(ev)
    before = w.sessions.get(view.session_id)
    out, _res = w.process(ev)  # same event again
    assert out.outcome == "duplicate" and "event_id" in out.reason
    again = dict(ev, event_id=str(uuid.uuid4()))  # a resend with a new id, same seq
    out, _ = w.process(again)
    assert out.outcome == "duplicate" and "seq 1 already answered" in out.reason
    assert w.sessions.get(view.session_id) == before
    assert not w.quarantine.items


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"seq": 5}, "not the item being served"),
        ({"item_id": "OTHER"}, "is not the item served"),
        ({"student_id": "intruder"}, "another student"),
        ({"session_id": "no-such-session"}, "unknown session"),
        ({"response": 1}, "answer contract version 1"),
        ({"schema_version": 4}, "unknown answer contract version 4"),
        ({"choice": True}, "invalid event: choice: must be an option id"),
        ({"choice": None}, "invalid event: choice: must be an option id"),
        ({"extra": "field"}, "invalid event: extra"),
    ],
)
def test_bad_answers_are_rejected_with_a_reason_and_quarantined(change, reason):
    w = World()
    view = w.start()
    if change.get("item_id") == "OTHER":
        current = w.sessions.get(view.session_id).current.item_id
        change = {"item_id": next(i.item_id for i in w.bank.items if i.item_id != current)}
    ev = w.event(view, **change)
    before = w.sessions.get(view.session_id)
    out, res = w.process(ev)
    assert out.outcome == "rejected" and reason in out.reason
    assert res["quarantine_key"] in w.quarantine.items
    assert w.history.records[-1].outcome == "rejected" and w.history.records[-1].raw_event
    assert w.sessions.get(view.session_id) == before


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "invalid event"),
        (b"x" * (MAX_EVENT_BYTES + 1), "exceeds"),
        ("caf\u00e9".encode("latin-1"), "not JSON"),
    ],
)
def test_garbage_payloads_are_rejected(raw, reason):
    w = World()
    out, res = w.process(None, raw=raw)
    assert out.outcome == "rejected" and reason in out.reason
    assert res["quarantine_key"]


def test_the_screen_quarantines_every_kind_of_poison_and_passes_answers_on_in_order():
    w = World()
    view = w.start()
    good = json.dumps(w.event(view)).encode()

    def record(data: bytes | str | None) -> dict:
        if isinstance(data, bytes):
            data = base64.b64encode(data).decode()
        return {"data": data, "partitionKey": "k", "sequenceNumber": str(len(data or ""))}

    poison = {
        "1 MiB": record(b"{" + b" " * (1024 * 1024 - 2) + b"}"),
        "300 KB": record(json.dumps({"pad": "x" * 300_000}).encode()),
        "binary": record(bytes(range(256)) * 4),
        "deep": record(b"[" * 2000 + b"]" * 2000),
        "latin-1": record("caf\u00e9".encode("latin-1")),
        "not base64": record("%%%"),
        "no data": {"partitionKey": "k"},
        "old contract": record(json.dumps({"schema_version": 1, "response": 1}).encode()),
        "not a record": "a string",
    }
    batch = [record(good), *poison.values(), record(good)]
    passed = screen_batch(batch, w.history, w.quarantine)
    assert passed == [batch[0], batch[-1]]
    assert len(w.quarantine.items) == len(poison)
    reasons = [r.reason for r in w.history.records]
    assert all(r.outcome == "rejected" for r in w.history.records) and len(reasons) == len(poison)
    assert sum("exceeds" in r for r in reasons) == 2 and any("nested too deeply" in r for r in reasons)
    assert any("schema_version" in r for r in reasons)
    assert max(len(str(item["raw"])) for item in w.quarantine.items.values()) >= 1024 * 1024  # kept whole
    # a refused payload whose event_id reads carries it in the history, so readers can de-duplicate it
    tagged = str(uuid.uuid4())
    screen_batch([record(json.dumps({"schema_version": 1, "response": 1, "event_id": tagged}).encode())],
                 w.history, w.quarantine)
    assert w.history.records[-1].outcome == "rejected" and w.history.records[-1].event_id == tagged
    # what passed is still applied by the pipeline, once
    out, _ = w.process(None, raw=base64.b64decode(passed[0]["data"]))
    assert out.outcome == "applied"


def test_answer_for_a_finished_session_is_rejected():
    w = World(TestPolicy(stopping=StoppingPolicy(max_items=1, min_items=1)))
    view = w.start()
    ev = w.event(view)
    w.process(ev)
    assert w.sessions.get(view.session_id).status == "finished"
    late = dict(ev, event_id=str(uuid.uuid4()), seq=2)
    out, _ = w.process(late)
    assert out.outcome == "rejected" and out.reason == "session is finished"


def test_racing_answers_never_lose_an_update():
    """Two executions read version v; the first commit wins, the second re-reads and sees a
    duplicate (same seq) instead of overwriting."""
    w = World()
    view = w.start()
    ev1 = w.event(view)
    ev2 = dict(w.event(view, correct=0), event_id=str(uuid.uuid4()))
    rec = lambda ev: Step(record={"data": base64.b64encode(json.dumps(ev).encode()).decode()})  # noqa: E731
    a = select_next_item(check_end_condition(update_theta(rec(ev1), w.sessions, w.banks), w.banks), w.banks)
    b = select_next_item(check_end_condition(update_theta(rec(ev2), w.sessions, w.banks), w.banks), w.banks)
    commit_step(a, w.sessions)
    with pytest.raises(Conflict):
        commit_step(b, w.sessions)
    retry = update_theta(Step(record=b.record, attempt=1), w.sessions, w.banks)
    assert retry.outcome == "duplicate"
    stored = w.sessions.get(view.session_id)
    assert stored.version == 1 and stored.served[0].response == 1


def test_a_retried_commit_whose_write_landed_writes_nothing_more():
    w = World()
    view = w.start()
    ev = w.event(view)
    rec = Step(record={"data": base64.b64encode(json.dumps(ev).encode()).decode()})
    step = select_next_item(check_end_condition(update_theta(rec, w.sessions, w.banks), w.banks), w.banks)
    commit_step(step.model_copy(deep=True), w.sessions)
    out = commit_step(step.model_copy(deep=True), w.sessions)  # Step Functions retry
    assert out["version"] == 1
    applied = [r for r in w.history.records if r.outcome == "applied"]
    assert len(applied) == 1 and applied[0].event_id == ev["event_id"]  # shipped from the first write


def test_the_history_comes_from_the_write_so_a_crash_after_it_loses_nothing():
    """The applied record travels in the session write (the outbox): a CommitStep that dies
    right after its write has still delivered it, and one that dies before wrote neither."""
    w = World()
    view = w.start()
    ev = w.event(view)
    rec = Step(record={"data": base64.b64encode(json.dumps(ev).encode()).decode()})
    step = select_next_item(check_end_condition(update_theta(rec, w.sessions, w.banks), w.banks), w.banks)

    class Crash(Exception):
        pass

    class DiesAfterTheWrite(MemorySessions):
        def commit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().commit(*args, **kwargs)
            raise Crash

    dying = DiesAfterTheWrite(catalog=w.banks, items=w.sessions.items, students=w.students,
                              latest=w.sessions.latest, history=w.history)
    with pytest.raises(Crash):
        commit_step(step.model_copy(deep=True), dying)
    assert [r.event_id for r in w.history.records if r.outcome == "applied"] == [ev["event_id"]]
    commit_step(step.model_copy(deep=True), w.sessions)  # the retry finds it landed
    assert [r.event_id for r in w.history.records if r.outcome == "applied"] == [ev["event_id"]]


def test_ship_history_reads_the_outbox_lines():
    from irtcat.domain.steps import ship_history
    from irtcat.domain.stored import pack_outbox, state_context

    w = World()
    view = w.start()
    w.process(w.event(view))
    state = w.sessions.get(view.session_id)
    assert state is not None
    context = state_context(state)
    shipped = MemoryHistory()
    packed = pack_outbox(w.history.records, context)
    whole = "\n".join(r.model_dump_json() for r in w.history.records)  # as written before the packed layout
    assert ship_history([(packed, context), ("", context), (whole, context)], shipped) == 2 * len(w.history.records)
    assert shipped.records == 2 * w.history.records
    assert len(packed) < 0.6 * len(whole)


def test_too_many_conflicts_fails_loudly():
    w = World()
    with pytest.raises(TooManyConflicts):
        update_theta(Step(record={"data": ""}, attempt=6), w.sessions, w.banks)


def test_pretest_answers_are_recorded_but_not_scored():
    stopping = StoppingPolicy(max_items=4, min_items=2, se_threshold=None)
    w = World(TestPolicy(pretest_positions=[2], stopping=stopping), pretest=5)
    view = w.start()
    w.process(w.event(view))
    state = w.sessions.get(view.session_id)
    assert state.current.pretest
    theta = state.theta
    out, _ = w.process(w.event(view, correct=1))
    assert out.outcome == "applied" and out.session.theta == theta
    rec = next(r for r in w.history.records if r.seq == 2)
    assert rec.scored is False


def test_step_selection_is_reproducible():
    w = World()
    view = w.start()
    rec = Step(record={"data": base64.b64encode(json.dumps(w.event(view)).encode()).decode()})
    first = select_next_item(check_end_condition(update_theta(rec, w.sessions, w.banks), w.banks), w.banks)
    second = select_next_item(check_end_condition(update_theta(rec, w.sessions, w.banks), w.banks), w.banks)
    assert first.session.current.item_id == second.session.current.item_id


def test_session_steps_follow_the_same_path_as_the_simulator():
    """The per-answer path (state rebuilt from the stored session at every step) chooses the
    same items and reaches the same thetas as the simulator's incremental engine."""
    from irtcat.irt.cat import record_answer
    from irtcat.irt.selection import select_next
    from irtcat.irt.state import CatState
    from irtcat.irt.stopping import check_stop

    policy = TestPolicy(randomesque=1, stopping=StoppingPolicy(max_items=15, se_threshold=None))
    w = World(policy)
    view = w.start()
    cfg, engine = policy.cat_config(), w.bank.engine
    sim = CatState.start(1, engine, cfg)
    row = np.array([0])
    rng = np.random.default_rng(3)
    for _ in range(15):
        state = w.sessions.get(view.session_id)
        expected = select_next(sim, engine, cfg, row, np.random.default_rng(0))[0]
        assert state.current.item_id == engine.item_ids[expected]
        x = int(rng.random() < 0.5)
        w.process(w.event(view, correct=x))
        record_answer(sim, engine, cfg, row, np.array([expected]), np.array([x]))
        after = w.sessions.get(view.session_id)
        assert after.theta == pytest.approx(sim.theta[0], abs=1e-9)
        if check_stop(sim, engine, cfg, row)[0]:
            break
    assert w.sessions.get(view.session_id).status == "finished"


def test_list_sessions_gives_trajectories_newest_first():
    from irtcat.domain.steps import list_sessions

    w = World(TestPolicy(stopping=StoppingPolicy(max_items=3, min_items=1, se_threshold=None)))
    first = w.start("s1")
    for _ in range(3):
        w.process(w.event(first))
    w.start("s2")
    rows = list_sessions("t", w.sessions)
    assert [r.student_id for r in rows] == ["s2", "s1"]
    assert rows[1].status == "finished" and [p.seq for p in rows[1].trajectory] == [1, 2, 3]
    assert rows[0].trajectory == []


@pytest.mark.parametrize("groups,teacher", [("[teachers]", True), ("[staff teachers]", True),
                                            (["teachers"], True), ("[students]", False), (None, False)])
def test_caller_reads_cognito_claims_as_api_gateway_passes_them(groups, teacher):
    from irtcat.domain.access import Caller, Forbidden, Unauthenticated

    claims = {"cognito:username": "s-1", "sub": "x"}
    if groups is not None:
        claims["cognito:groups"] = groups
    who = Caller.from_claims(claims)
    assert who.user_id == "s-1" and who.is_teacher is teacher
    who.require_student("s-1")
    with pytest.raises(Forbidden):
        who.require_student("s-2")
    with pytest.raises(Unauthenticated):
        Caller.from_claims({"sub": "x"})


def test_a_batch_is_grouped_by_session_keeping_each_sessions_order() -> None:
    from irtcat.domain.steps import by_session

    records = [{"partitionKey": s, "sequenceNumber": str(n)} for n, s in enumerate("abacba")]
    groups = by_session(records)
    assert [g["session_id"] for g in groups] == ["a", "b", "c"]
    assert [[r["sequenceNumber"] for r in g["records"]] for g in groups] == [["0", "2", "5"], ["1", "4"], ["3"]]
    assert by_session([]) == []
