"""Answer times, rapid guesses, effort-moderated scoring and person fit through the session's
own steps (domain/effort.py), with the clock under the test's control."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from irtcat.adapters.memory import MemoryBanks
from irtcat.domain.bank import ItemBank
from irtcat.domain.effort import answer_seconds, rapid_threshold
from irtcat.domain.events import AnswerEvent
from irtcat.domain.generate import generate_bank
from irtcat.domain.policy import ScoringPolicy, StoppingPolicy, TestPolicy
from irtcat.domain.scoring import simulated_choice
from irtcat.domain.session import SessionState, apply_answer, choose_next_item, finish, new_session
from irtcat.domain.stored import pack, unpack

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def timed_bank(seconds: float = 30.0) -> ItemBank:
    """A 2PL bank whose items' answers typically take ``seconds`` (rapid-guess threshold 3 s)."""
    bank = generate_bank(80, "2PL", seed=4, bank_id="e", numeric_every=0)
    return bank.model_copy(update={"items": [it.model_copy(update={"mean_log_seconds": float(np.log(seconds))})
                                             for it in bank.items]})


def run(bank: ItemBank, policy: TestPolicy, seconds: list[float], tablet: list[int | None] | None = None,
        correct: list[bool] | None = None) -> SessionState:
    """A session answered at the given pace: item k's answer arrives ``seconds[k]`` after it was served."""
    state = new_session("sess-1", "stu", policy, bank, None, now=T0)
    now = T0
    for k, wait in enumerate(seconds):
        cur = state.current
        assert cur is not None
        item = bank.item(cur.item_id)
        shown = [(o.id, o.text) for o in state.view(bank).item.options or []]  # type: ignore[union-attr]
        choice = simulated_choice(item, shown, correct[k] if correct else k % 2 == 0, np.random.default_rng(k))
        now = now + timedelta(seconds=wait)
        event = AnswerEvent.model_validate({
            "schema_version": 2, "event_id": str(uuid.uuid4()), "session_id": state.session_id,
            "student_id": "stu", "item_id": cur.item_id, "seq": cur.seq, "choice": choice,
            "answered_at": now.isoformat(), "response_time_ms": tablet[k] if tablet else None})
        state = apply_answer(state, event, bank, now).model_copy(update={"updated_at": now})
        if k < len(seconds) - 1:
            nxt = choose_next_item(state, bank)
            assert nxt is not None
            state = nxt
    return finish(state, "max_items", now, bank)


def policy(**over: Any) -> TestPolicy:
    return TestPolicy(sympson_hetter=False, stopping=StoppingPolicy(se_threshold=None, min_items=20, max_items=20),
                      **over)


def test_an_answers_time_is_the_tablets_claim_bounded_by_the_servers_measure() -> None:
    assert answer_seconds(4000, T0, T0 + timedelta(seconds=9)) == 4.0  # claiming less only hurts the tablet
    assert answer_seconds(60000, T0, T0 + timedelta(seconds=12)) == 12.0  # never more than the server saw
    assert answer_seconds(None, T0, T0 + timedelta(seconds=7.5)) == 7.5
    bank = timed_bank()
    assert rapid_threshold(bank, bank.items[0].item_id) == pytest.approx(3.0)
    untimed = bank.model_copy(update={"items": [it.model_copy(update={"mean_log_seconds": None}) if k else it
                                                for k, it in enumerate(bank.items)]})
    assert rapid_threshold(untimed, untimed.items[5].item_id) == pytest.approx(3.0)  # the bank's median stands in
    assert rapid_threshold(generate_bank(5, "2PL", seed=1), "i00001") is None  # no times: no threshold


def test_a_rapid_guesser_is_flagged_and_an_earnest_student_is_not() -> None:
    bank = timed_bank()
    earnest = run(bank, policy(), [25.0 + k % 7 for k in range(20)])
    assert earnest.flags == [] and earnest.effort == 1.0 and earnest.rapid_guesses == 0
    assert earnest.person_fit is not None
    guesses = [1.0 if k % 3 == 0 else 28.0 for k in range(20)]  # 7 of 20 in a second
    guesser = run(bank, policy(), guesses)
    assert guesser.rapid_guesses == 7 and guesser.effort == 0.65 and "effort" in guesser.flags
    view = guesser.view(bank).result
    assert view is not None and view.flags == ["effort"] and view.rapid_guesses == 7
    # the tablet's claims are bounded by the server: a claim of 2 minutes on a 1-second answer is 1 second
    bounded = run(bank, policy(), guesses, tablet=[120_000] * 20)
    assert [s.seconds for s in bounded.served[:3]] == [1.0, 28.0, 28.0]


def test_effort_moderated_scoring_leaves_rapid_guesses_out_of_theta() -> None:
    bank = timed_bank()
    right = [True] * 20
    plain = run(bank, policy(), [1.0] * 5 + [30.0] * 15, correct=right)
    moderated = run(bank, policy(scoring=ScoringPolicy(exclude_rapid_guesses=True)), [1.0] * 5 + [30.0] * 15,
                    correct=right)
    assert moderated.served[0].theta == moderated.theta_start  # a rapid guess moves nothing
    assert moderated.theta < plain.theta  # five fewer right answers count
    assert moderated.rapid_guesses == plain.rapid_guesses == 5


def test_a_pattern_against_the_model_is_flagged_for_person_fit() -> None:
    """Right on the hardest items served and wrong on the easiest: lz* far below the .05 value."""
    bank = timed_bank()
    state = run(bank, policy(), [30.0] * 20, correct=[True] * 20)
    # rewrite the answers: wrong where the item is easier than the estimate, right where harder
    b = {it.item_id: it.b for it in bank.items}
    flipped = state.model_copy(deep=True)
    for s in flipped.served:
        s.response = int(float(b[s.item_id]) > flipped.theta)  # type: ignore[arg-type]
    judged = finish(flipped.model_copy(update={"status": "active"}), "max_items", T0, bank)
    assert judged.person_fit is not None and judged.person_fit < -1.645 and "person_fit" in judged.flags


def test_times_and_checks_survive_the_stored_form() -> None:
    bank = timed_bank()
    guesser = run(bank, policy(), [1.0 if k % 3 == 0 else 28.0 for k in range(20)])
    banks = MemoryBanks()
    banks.publish(bank)
    doc = pack(guesser, bank)
    back = unpack(doc, session_id=guesser.session_id, student_id="stu", status="finished", version=0,
                  bank_of=lambda i, v: bank, policy_of=lambda t, v: guesser.policy)
    assert [s.seconds for s in back.served] == [s.seconds for s in guesser.served]
    assert (back.effort, back.rapid_guesses, back.flags, back.person_fit) == (
        guesser.effort, guesser.rapid_guesses, guesser.flags, guesser.person_fit)


def test_through_the_pipeline_steps_a_hurried_session_is_flagged_in_its_result_history_and_teacher_list() -> None:
    """The answer steps as the state machine runs them: answers applied a few milliseconds after
    their items were served (the server's measure) on a bank whose items take 30 s are rapid
    guesses; the finished session says so in its result, its history record and the teacher's list."""
    import json

    from irtcat.domain.steps import list_sessions

    from tests.unit.test_steps import World

    world = World(policy())
    world.bank = timed_bank().model_copy(update={"bank_id": world.bank.bank_id, "version": 2})
    world.banks.publish(world.bank)
    view = world.start()
    for _ in range(20):
        world.process(world.event(view))
    final = world.sessions.get(view.session_id)
    assert final is not None and final.status == "finished"
    assert final.effort == 0.0 and final.rapid_guesses == 20 and "effort" in final.flags
    record = next(r for r in world.history.records if r.record_type == "session")
    assert record.effort == 0.0 and json.loads(record.flags or "[]") == final.flags
    answers = [r for r in world.history.records if r.record_type == "answer" and r.outcome == "applied"]
    assert all(r.seconds is not None and r.seconds < 3.0 for r in answers)
    rows = list_sessions("t", world.sessions)
    assert rows[0].flags == final.flags and rows[0].effort == 0.0
