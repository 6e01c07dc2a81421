"""Test security in the domain: scoring on the server (no key leaves it), the door check,
no item repeated across a student's sessions, time limits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import numpy as np
import pytest
from irtcat.domain.access import Forbidden
from irtcat.domain.bank import Item
from irtcat.domain.events import AnswerEvent
from irtcat.domain.policy import StoppingPolicy, TestPolicy
from irtcat.domain.ports import NotFound
from irtcat.domain.scoring import InvalidChoice, display_order, score_choice, shown_options
from irtcat.domain.steps import NotAnAnswer, NotServing, admit_answer, get_session
from irtcat.domain.student import SEEN_ITEMS_PER_TEST, seen_after

from .test_steps import World


def _choice_item() -> Item:
    return Item(item_id="q1", options=["3", "4", "5", "6"], key=2, stem="2 + 3?")


def test_a_choice_is_scored_on_the_server_by_the_option_it_names():
    item = _choice_item()
    for secret in ("s1", "s2", "s3"):
        shown = shown_options(secret, 4, item)
        assert sorted(text for _, text in shown) == sorted(item.options or [])
        right = next(oid for oid, text in shown if text == "5")
        assert score_choice(item, right, secret, 4).score == 1
        assert score_choice(item, right, secret, 4).option == 2
        for oid, text in shown:
            if text != "5":
                assert score_choice(item, oid, secret, 4).score == 0
    # the order, and so the id of the key, differs between sessions: an id means nothing shared
    assert len({tuple(display_order(f"secret-{k}", 1, item)) for k in range(20)}) > 5
    for bad in ("Z", "AB", "", 1, 1.5):
        with pytest.raises(InvalidChoice, match="is not one of the options"):
            score_choice(item, bad, "s1", 4)


def test_a_numeric_entry_is_scored_within_the_tolerance():
    item = Item(item_id="n1", answer_value=12.5, tolerance=0.05, stem="25 / 2?")
    assert score_choice(item, 12.5, "s", 1).score == 1 and score_choice(item, 12.54, "s", 1).score == 1
    assert score_choice(item, 12.6, "s", 1).score == 0 and score_choice(item, 13, "s", 1).score == 0
    for bad in ("12.5", True, float("nan")):
        with pytest.raises(InvalidChoice, match="not a number"):
            score_choice(item, bad, "s", 1)
    with pytest.raises(ValueError, match=r"numeric-entry item .* has no options or key"):
        Item(item_id="x", answer_value=1.0, options=["1", "2"], key=0)
    with pytest.raises(ValueError, match="no scoring rule"):
        score_choice(Item(item_id="bare"), "A", "s", 1)


def test_no_reply_carries_a_key_or_the_order_that_would_give_it():
    w = World()
    view = w.start()
    for _ in range(8):
        state = w.sessions.get(view.session_id)
        reply = json.loads(state.view(w.bank).model_dump_json())
        item = w.bank.item(reply["item"]["item_id"])
        assert set(reply["item"]) == {"item_id", "seq", "kind", "stem", "options", "partial_credit", "responses",
                                      "passage"}
        assert reply["item"]["responses"] is None and reply["item"]["passage"] is None
        if item.kind == "choice":
            assert [o["id"] for o in reply["item"]["options"]] == list("ABCD")
            assert all(set(o) == {"id", "text"} for o in reply["item"]["options"])
        else:
            assert reply["item"]["options"] is None and reply["item"]["kind"] == "numeric"
        assert "key" not in json.dumps(reply) and "answer_value" not in json.dumps(reply)
        assert "credits" not in json.dumps(reply)
        assert state.secret not in json.dumps(reply)
        w.process(w.event(view))


def test_five_retakes_share_no_item_and_a_seen_bank_ends_with_its_own_reason():
    policy = TestPolicy(stopping=StoppingPolicy(max_items=20, min_items=1, se_threshold=None))
    w = World(policy)
    served: list[set[str]] = []
    for _ in range(5):
        view = w.start("retaker")
        while w.sessions.get(view.session_id).status == "active":
            w.process(w.event(view))
        served.append({x.item_id for x in w.sessions.get(view.session_id).served})
    assert all(len(s) == 20 for s in served)
    assert len(set().union(*served)) == 100  # five sessions, no item twice
    assert w.students.get("retaker").seen_in("t") == list(dict.fromkeys(
        x.item_id for s in w.sessions.list_by_test("t", 10)[::-1] for x in s.served))
    # another student's session excludes nothing; the retaker's sixth session takes the last 20
    other = w.start("other")
    assert w.sessions.get(other.session_id).excluded == []
    w.start("retaker")
    sixth = w.sessions.list_by_test("t", 1)[0]
    while sixth.status == "active":
        w.process(w.event(sixth))
        sixth = w.sessions.get(sixth.session_id)
    seventh = w.start("retaker")
    assert seventh.status == "finished" and seventh.result is not None
    assert seventh.result.stop_reason == "bank_exhausted" and seventh.result.items_answered == 0


def test_exclusion_can_be_switched_off_and_the_memory_is_bounded():
    policy = TestPolicy(exclude_seen_items=False, randomesque=1,
                        stopping=StoppingPolicy(max_items=5, min_items=1, se_threshold=None))
    w = World(policy)
    sessions = []
    for _ in range(2):
        view = w.start("same")
        sessions.append(view.session_id)
        while w.sessions.get(view.session_id).status == "active":
            w.process(w.event(view))
    assert w.sessions.get(sessions[1]).excluded == []  # nothing excluded: items may come again
    many = [f"i{k}" for k in range(SEEN_ITEMS_PER_TEST + 50)]
    kept = seen_after(many[:300], many[300:])
    assert len(kept) == SEEN_ITEMS_PER_TEST and kept[-1] == many[-1] and kept[0] == many[50]


def _later(seconds: float):  # type: ignore[no-untyped-def]
    real = datetime.now(UTC) + timedelta(seconds=seconds)
    return mock.patch("irtcat.domain.steps._now", return_value=real)


def test_an_answer_after_the_time_limit_is_rejected_and_finishes_the_session():
    w = World(TestPolicy(stopping=StoppingPolicy(time_limit_seconds=600)))
    view = w.start()
    assert view.expires_at is not None and 590 < (view.remaining_seconds or 0) <= 600
    w.process(w.event(view))
    late = w.event(view)
    with _later(601):
        out, _res = w.process(late)
    assert out.outcome == "expired" and "time limit" in (out.reason or "")
    state = w.sessions.get(view.session_id)
    assert state.status == "finished" and state.stop_reason == "time_limit" and state.answered == 1
    answer, session = w.history.records[-2:]
    assert answer.outcome == "rejected" and "time limit" in (answer.reason or "")
    assert session.record_type == "session" and session.stop_reason == "time_limit"
    with _later(602):  # the same late answer again changes nothing
        again, _ = w.process(late)
    assert again.outcome == "rejected" and w.sessions.get(view.session_id).version == state.version


def test_a_read_after_the_time_limit_finishes_the_session():
    w = World(TestPolicy(stopping=StoppingPolicy(time_limit_seconds=60)))
    view = w.start()
    with _later(30):
        assert get_session(view.session_id, w.sessions, w.banks).status == "active"
    with _later(61):
        read = get_session(view.session_id, w.sessions, w.banks, w.history)
    assert read.status == "finished" and read.result is not None and read.result.stop_reason == "time_limit"
    assert w.history.records[-1].stop_reason == "time_limit"
    assert w.students.get("s1") is not None  # the profile is written as for any finished session


def test_the_door_admits_only_the_answer_the_session_is_waiting_for():
    w = World(TestPolicy(stopping=StoppingPolicy(time_limit_seconds=60)))
    view = w.start()
    good = AnswerEvent.model_validate(w.event(view))
    assert admit_answer(good, w.sessions, w.banks) is True
    served = w.bank.item(good.item_id)
    wrong_kind = 3.0 if served.kind == "choice" else "A"
    with pytest.raises(NotAnAnswer, match="is not one of the options" if served.kind == "choice" else "not a number"):
        admit_answer(good.model_copy(update={"choice": wrong_kind}), w.sessions, w.banks)
    for change, error, words in (
        ({"seq": 3}, NotServing, "not the item being served"),
        ({"item_id": "zzz"}, NotServing, "is not the item served"),
        ({"student_id": "intruder"}, Forbidden, "another student"),
        ({"session_id": "nope"}, NotFound, "not found"),
    ):
        with pytest.raises(error, match=words):
            admit_answer(good.model_copy(update=change), w.sessions, w.banks)
    w.process(json.loads(good.model_dump_json()))
    assert admit_answer(good, w.sessions, w.banks) is False  # a retried submit: acknowledged, not published
    with pytest.raises(NotServing, match="already answered"):
        admit_answer(good.model_copy(update={"event_id": uuid.uuid4()}), w.sessions, w.banks)
    nxt = AnswerEvent.model_validate(w.event(view))
    with _later(61), pytest.raises(NotServing, match="time limit passed"):
        admit_answer(nxt, w.sessions, w.banks)


def test_history_keeps_the_choice_the_option_and_the_score():
    w = World()
    view = w.start()
    for correct in (1, 0, 1):
        w.process(w.event(view, correct=correct))
    applied = [r for r in w.history.records if r.outcome == "applied"]
    assert [r.response for r in applied] == [1, 0, 1]
    for rec in applied:
        item = w.bank.item(rec.item_id or "")
        assert rec.choice is not None
        if item.kind == "choice":
            assert rec.option is not None and (rec.option == item.key) == bool(rec.response)
        assert "key" not in rec.model_dump() and "answer_value" not in rec.model_dump()
    assert len(applied) == 3


def test_exposure_control_is_on_by_default_and_a_copied_bank_is_not_stale():
    from irtcat.domain.exposure import with_exposure_control
    from irtcat.domain.generate import generate_bank
    from irtcat.irt.simulation import simulate

    policy = TestPolicy()
    assert policy.sympson_hetter and policy.max_exposure == 0.25
    bank = generate_bank(200, "2PL", seed=9, with_content=False)
    assert bank.engine.exposure_k.min() == 1.0  # built (and cached) before the copy
    policy = TestPolicy(stopping=StoppingPolicy(max_items=10, se_threshold=None))
    controlled, rounds = with_exposure_control(bank, policy, examinees=1500, rounds=10)
    assert controlled.engine.exposure_k.min() < 1.0 and controlled.engine.priced  # the copy's engine sees them
    assert rounds[0] > 0.5 and min(rounds) < 0.26
    thetas = np.random.default_rng(5).normal(size=1500)
    config = TestPolicy(stopping=StoppingPolicy(max_items=10, se_threshold=None)).cat_config()
    free = simulate(bank.engine, config, thetas, seed=6).summary(bank.engine)
    held = simulate(controlled.engine, config, thetas, seed=6).summary(controlled.engine)
    assert free["max_exposure"] > 0.5 and held["max_exposure"] <= 0.27
    assert held["overlap_rate"] < free["overlap_rate"] and 0 < held["overlap_rate"] < 1


def test_a_student_has_one_active_session_per_test():
    """A second start returns the active session as it stands (a tablet that lost it picks it
    up again); once it finished, or its time is up, a start opens a new one."""
    from irtcat.domain.api import StartSessionRequest
    from irtcat.domain.steps import start_session

    w = World(TestPolicy(stopping=StoppingPolicy(max_items=3, min_items=1, se_threshold=None, time_limit_seconds=60)))
    request = StartSessionRequest(student_id="one", test_id="t")
    first, created = start_session(request, w.sessions, w.students, w.banks)
    again, created_again = start_session(request, w.sessions, w.students, w.banks)
    assert created and not created_again and again.session_id == first.session_id
    assert len(w.sessions.items) == 1
    other_test = start_session(StartSessionRequest(student_id="two", test_id="t"), w.sessions, w.students, w.banks)
    assert other_test[1] and other_test[0].session_id != first.session_id
    with _later(61):  # past its time limit: a start opens a new session
        later, created_later = start_session(request, w.sessions, w.students, w.banks)
    assert created_later and later.session_id != first.session_id
    while w.sessions.get(later.session_id).status == "active":
        w.process(w.event(later))
    after, created_after = start_session(request, w.sessions, w.students, w.banks)
    assert created_after and after.session_id not in (first.session_id, later.session_id)


def test_racing_starts_of_one_student_open_one_session():
    from irtcat.domain.api import StartSessionRequest
    from irtcat.domain.steps import start_session

    w = World()
    request = StartSessionRequest(student_id="racer", test_id="t")
    real_latest = w.sessions.latest_for
    calls = {"n": 0}

    def stale_first_read(student_id: str, test_id: str):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:  # this start read before the other one created its session
            start_session(request, w.sessions, w.students, w.banks)
            return None
        return real_latest(student_id, test_id)

    w.sessions.latest_for = stale_first_read  # type: ignore[method-assign]
    view, created = start_session(request, w.sessions, w.students, w.banks)
    assert not created and len(w.sessions.items) == 1 and view.session_id in w.sessions.items


def test_a_finished_session_reports_a_scale_score_and_a_level():
    from irtcat.domain.policy import ProficiencyLevel, ReportingScale

    policy = TestPolicy(scale=ReportingScale(intercept=500, slope=100, low=200, high=800),
                        stopping=StoppingPolicy(max_items=4, min_items=1, se_threshold=None))
    assert policy.scale.score(0.414, 0.3) == (541.0, 30.0) and policy.scale.score(9.0, 0.3)[0] == 800.0
    assert [policy.level(t) for t in (-2.0, -1.0, 0.5, 1.2)] == ["below basic", "basic", "proficient", "advanced"]
    w = World(policy)
    view = w.start()
    while w.sessions.get(view.session_id).status == "active":
        w.process(w.event(view))
    state = w.sessions.get(view.session_id)
    result = state.view(w.bank).result
    assert result is not None and (result.scale_score, result.scale_se) == policy.scale.score(state.theta, state.se)
    assert result.level == policy.level(state.theta)
    record = w.history.records[-1]
    assert record.record_type == "session" and record.scale_score == result.scale_score and record.level == result.level
    for bad, words in (({"low": 900}, "low bound"),):
        with pytest.raises(ValueError, match=words):
            ReportingScale(**bad)
    with pytest.raises(ValueError, match="cuts must increase"):
        TestPolicy(levels=[ProficiencyLevel(name="a"), ProficiencyLevel(name="b", cut=1.0),
                           ProficiencyLevel(name="c", cut=0.5)])
    with pytest.raises(ValueError, match="first level has no cut"):
        TestPolicy(levels=[ProficiencyLevel(name="a", cut=0.0)])


def test_the_classification_rule_takes_the_levels_cuts():
    from irtcat.domain.policy import ClassificationPolicy

    levels_policy = TestPolicy(stopping=StoppingPolicy(classification=ClassificationPolicy()))
    assert levels_policy.cat_config().classification.cuts == (-1.0, 0.0, 1.0)  # type: ignore[union-attr]
    one_cut = StoppingPolicy(classification=ClassificationPolicy(cut=0.5))
    assert TestPolicy(stopping=one_cut).classification_cuts() == (0.5,)
    assert TestPolicy(stopping=StoppingPolicy(classification=ClassificationPolicy(cuts=[-0.5, 0.7]))
                      ).classification_cuts() == (-0.5, 0.7)
    with pytest.raises(ValueError, match="not both"):
        ClassificationPolicy(cut=0.0, cuts=[1.0])
    with pytest.raises(ValueError, match="increasing"):
        ClassificationPolicy(cuts=[1.0, 0.0])
    with pytest.raises(ValueError, match="needs a cut"):
        TestPolicy(levels=[], stopping=StoppingPolicy(classification=ClassificationPolicy()))
