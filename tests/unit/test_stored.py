"""The session as stored (irtcat.domain.stored): lossless for what the steps need, small enough
that an answer's commit costs at most two write units with its outbox and index copies, and
sessions stored whole (the layout before) go on."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from irtcat.adapters.aws import DynamoSessions, Settings
from irtcat.capacity.model import IndexSpec, dynamodb_item_bytes, write_units
from irtcat.domain.policy import ProficiencyLevel, StoppingPolicy, TestPolicy
from irtcat.domain.session import SessionState
from irtcat.domain.stored import pack, unpack

from tests.unit.test_steps import World

# the table's index as template.yaml declares it
INDEX = (IndexSpec("sessions_by_test", ("gsi1pk", "gsi1sk"), "KEYS_ONLY"),)
FIXED_30 = StoppingPolicy(se_threshold=None, min_items=30, max_items=30)


def big_policy() -> TestPolicy:
    """A policy of several KB (forty proficiency levels with long names): by reference, it
    must not make the session item any larger."""
    levels = [ProficiencyLevel(name="the lowest level of the reporting scale")] + [
        ProficiencyLevel(name=f"proficiency level number {k} of the scale", cut=-4 + k / 5) for k in range(40)]
    return TestPolicy(stopping=FIXED_30, sympson_hetter=False, levels=levels)


def run_test(world: World, answers: int = 60) -> tuple[list[dict[str, Any]], SessionState]:
    """A whole test through the steps; every commit as DynamoSessions writes its item."""
    items: list[dict[str, Any]] = []
    dynamo = DynamoSessions(Settings("t", "b", "h", "h"), world.banks)
    commit = world.sessions.commit

    def recording(state: SessionState, expected: int, profile: Any, outbox: Any = None) -> None:
        commit(state, expected, profile, outbox)
        items.append(dynamo._item(state, outbox))

    world.sessions.commit = recording  # type: ignore[method-assign]
    view = world.start()
    for k in range(answers):
        state = world.sessions.get(view.session_id)
        assert state is not None
        if state.status == "finished":
            break
        world.process(world.event(view, correct=k % 3 != 0))
    final = world.sessions.get(view.session_id)
    assert final is not None and final.status == "finished"
    return items, final


@pytest.mark.parametrize("bank_items", [100, 500])
def test_an_answer_costs_at_most_two_write_units_and_the_finished_item_is_under_2_kb(bank_items: int) -> None:
    small, big = World(TestPolicy(stopping=FIXED_30, sympson_hetter=False)), World(big_policy())
    for world in (small, big):
        from irtcat.domain.generate import generate_bank

        world.bank = generate_bank(bank_items, seed=5)
        world.banks.publish(world.bank)
    (items, final), (big_items, _) = run_test(small), run_test(big)
    assert final.scored_answered == 30 and len(items) == 30
    def state_bytes(item: dict[str, Any]) -> int:
        return dynamodb_item_bytes({k: v for k, v in item.items() if k != "outbox"})

    # the policy is stored by reference (only the final outbox's session record names its level)
    assert [state_bytes(i) for i in items] == [state_bytes(i) for i in big_items]
    sizes = [dynamodb_item_bytes(i) for i in items]
    assert max(sizes) <= 2048, sizes
    units = [sum(write_units(old, new, INDEX)) for old, new in itertools.pairwise(items)]
    assert sum(units) / len(units) <= 2.0 and max(units) <= 2, units
    assert len(json.dumps(big.banks.policy("t", 1).model_dump())) > 2000


def blueprint_world(bank_items: int) -> World:
    """A world whose test is held to a 20-rule blueprint (shadow-test selection): five areas,
    item types, depth of knowledge, nine skills, working time, enemies and passages."""
    from irtcat.domain.bank import ItemBank
    from irtcat.domain.blueprint import Blueprint
    from irtcat.domain.generate import generate_bank

    areas = ["algebra", "geometry", "number", "data", "measure"]
    bank = generate_bank(bank_items, seed=5, content_areas=areas)
    rows = [it.model_copy(update={"expected_seconds": 60.0 + k % 5 * 10, "attributes": {
        "dok": str(1 + k % 3), "skill": f"s{k % 9}", **({"passage": f"p{k // 5}"} if k < 40 else {})}}).model_dump()
        for k, it in enumerate(bank.items)]
    bank = ItemBank.model_validate({**bank.model_dump(), "items": rows})
    ids = [it.item_id for it in bank.items]
    rules: list[dict[str, Any]] = [{"attribute": "content_area", "value": a, "min": 5, "max": 7} for a in areas]
    rules += [{"attribute": "item_type", "value": "numeric", "min": 3},
              {"attribute": "item_type", "value": "choice", "min": 20},
              {"attribute": "dok", "value": "1", "max": 12}, {"attribute": "dok", "value": "2", "min": 8},
              {"attribute": "dok", "value": "3", "min": 4}, {"sum": "expected_seconds", "max": 2400}]
    rules += [{"attribute": "skill", "value": f"s{k}", "max": 6} for k in range(9)]
    blueprint = Blueprint.model_validate({
        "length": 30, "constraints": rules, "enemies": [ids[k:k + 2] for k in range(40, 80, 2)],
        "sets": {"attribute": "passage", "items_min": 3, "items_max": 5, "max_sets": 2}})
    assert len(blueprint.constraints) == 20
    world = World(TestPolicy(selection="shadow", blueprint=blueprint, stopping=FIXED_30, sympson_hetter=False))
    world.bank = bank
    world.banks.publish(bank.model_copy(update={"version": 2}))
    world.bank = world.banks.bank(bank.bank_id, 2)
    return world


@pytest.mark.parametrize("bank_items", [100, 500])
def test_a_twenty_rule_blueprint_keeps_the_item_in_budget(bank_items: int) -> None:
    """The policy (and its blueprint) is stored by reference; the shadow test the session keeps
    for its next solve is two bytes an item."""
    items, final = run_test(blueprint_world(bank_items))
    assert final.scored_answered == 30 and final.shadow_test and not final.relaxed
    sizes = [dynamodb_item_bytes(i) for i in items]
    assert max(sizes) <= 2048, sizes
    units = [sum(write_units(old, new, INDEX)) for old, new in itertools.pairwise(items)]
    assert sum(units) / len(units) <= 2.0 and max(units) <= 2, units


def test_the_stored_form_keeps_what_the_steps_need() -> None:
    world = World(TestPolicy(stopping=FIXED_30, pretest_positions=[3, 8]), pretest=5)
    _, final = run_test(world)
    doc = pack(final, world.bank)
    again = unpack(json.loads(json.dumps(doc)), session_id=final.session_id, student_id=final.student_id,
                   status=final.status, version=final.version, bank_of=world.banks.bank,
                   policy_of=world.banks.policy)
    assert pack(again, world.bank) == doc
    assert again.model_dump(exclude={"served"}) == final.model_dump(exclude={"served"})
    for a, b in zip(again.served, final.served, strict=True):
        assert (a.seq, a.item_id, a.pretest, a.response, a.event_digest) == \
            (b.seq, b.item_id, b.pretest, b.response, b.event_digest)
        assert a.theta == pytest.approx(b.theta, abs=5e-4) and a.se == pytest.approx(b.se, abs=5e-4)
    assert any(s.pretest for s in again.served)


def test_a_session_stored_whole_goes_on_and_keeps_its_duplicates() -> None:
    """A session written before the packed layout (the whole state, its policy inline, each
    position's event_id): the next answer applies, the item is rewritten packed with the policy
    still inline, and a redelivered earlier answer is still a duplicate."""
    world = World(TestPolicy(stopping=FIXED_30))
    view = world.start()
    events = []
    for _ in range(3):
        events.append(world.event(view))
        world.process(events[-1])
    state = world.sessions.get(view.session_id)
    assert state is not None
    whole = state.model_dump(mode="json", exclude={"policy_version"})
    for position, event in zip(whole["served"], events, strict=False):
        del position["event_digest"]
        position.update(event_id=event["event_id"], choice=event["choice"], answered_at=event["answered_at"],
                        response_time_ms=None)
    world.sessions.items[view.session_id]["doc"] = json.dumps(whole)

    out, _ = world.process(events[0])
    assert out.outcome == "duplicate"
    out, result = world.process(world.event(view))
    assert out.outcome == "applied" and result["version"] == state.version + 1
    stored = json.loads(world.sessions.items[view.session_id]["doc"])
    assert stored["v"] == 2 and "pol" in stored and "pv" not in stored
    again = world.sessions.get(view.session_id)
    assert again is not None and again.answered == 4 and again.policy == state.policy
    out, _ = world.process(events[1])
    assert out.outcome == "duplicate"


def test_publishing_a_changed_policy_makes_a_new_version_and_running_sessions_keep_theirs() -> None:
    world = World(TestPolicy(stopping=FIXED_30))
    view = world.start()
    first = world.banks.test("t")
    assert first.policy_version == 1
    assert world.banks.put_test(first).policy_version == 1  # the same policy: the same version
    changed = first.model_copy(update={"policy": TestPolicy(stopping=StoppingPolicy(max_items=10, min_items=10))})
    assert world.banks.put_test(changed).policy_version == 2
    running = world.sessions.get(view.session_id)
    assert running is not None and running.policy_version == 1 and running.policy.stopping.max_items == 30
    assert world.start("s2").session_id != view.session_id
    assert world.sessions.latest_for("s2", "t").policy_version == 2  # type: ignore[union-attr]


def test_a_profile_keeps_its_seen_items_one_per_line_and_reads_the_json_lists_written_before() -> None:
    from irtcat.domain.student import pack_seen, unpack_seen

    ids = [f"i{k:04d}" for k in range(30)]
    assert pack_seen(ids) == "\n".join(ids) and unpack_seen(pack_seen(ids)) == ids
    assert len(pack_seen(ids)) < 0.7 * len(json.dumps(ids))
    assert unpack_seen(json.dumps(ids)) == ids and unpack_seen("") == []
    for odd in (["a\nb", "c"], ["[x", "y"], []):
        assert unpack_seen(pack_seen(odd)) == odd
