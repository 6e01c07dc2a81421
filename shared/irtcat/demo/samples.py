"""The sample events in ``events/`` and the fixtures they refer to, made from the domain code.

``make_samples()`` is deterministic (fixed ids, seeds and clock), so a test can check that the
committed files are exactly what the code produces today: the samples cannot drift from the
contracts. ``seed_fixtures()`` puts the fixtures into a stack so that every sample runs there.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..adapters.memory import MemoryBanks, MemorySessions, MemoryStudents
from ..domain.bank import ItemBank
from ..domain.generate import generate_bank
from ..domain.policy import TestDefinition
from ..domain.scoring import simulated_choice
from ..domain.session import SessionState, new_session
from ..domain.steps import Step, answer_record, by_session, check_end_condition, select_next_item, update_theta
from ..domain.stored import pack, pack_outbox, state_context
from ..emulator.api import get_session_event, http_event, id_token_claims, start_session_event

SESSION_ID = "00000000-0000-4000-8000-000000000001"
STUDENT_ID = "student-0001"
TEST_ID = "sample-math"
TEACHER_ID = "teacher-0001"
EVENT_ID = "11111111-1111-4111-8111-111111111111"
REQUEST_ID = "22222222-2222-4222-8222-222222222222"
CLOCK = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
SECRET = "5" * 32  # the sample session's option-order seed (a real one is random)


def sample_bank() -> ItemBank:
    return generate_bank(60, "3PL", seed=3, bank_id="sample-math", pretest=2,
                         content_areas=["number", "operations"], numeric_every=0)


def sample_session(bank: ItemBank) -> SessionState:
    test = sample_test()
    return new_session(SESSION_ID, STUDENT_ID, test.policy.model_copy(update={"test_id": TEST_ID}),
                       bank, theta_start=None, now=CLOCK, policy_version=test.policy_version,
                       ).model_copy(update={"version": 1, "secret": SECRET})


def sample_test() -> TestDefinition:
    return TestDefinition(test_id=TEST_ID, bank_id="sample-math", policy_version=1)


SAMPLE_SEQUENCE = "49650000000000000000000000000000000000000000000000000001"


def kinesis_record(event: dict[str, Any], sequence: str = SAMPLE_SEQUENCE) -> dict[str, Any]:
    """A Kinesis record as an EventBridge Pipe hands it to its target."""
    return {
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}", "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/pipe", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/irtcat-local-AnswerStream",
        "kinesisSchemaVersion": "1.0", "partitionKey": event.get("session_id", "x"),
        "sequenceNumber": sequence,
        "data": base64.b64encode(json.dumps(event).encode()).decode(),
        "approximateArrivalTimestamp": 1767603600.0,
    }


def answer_event(session: SessionState, bank: ItemBank) -> dict[str, Any]:
    """The answer the sample student sends: the right one, as the tablet shows it."""
    view = session.view(bank, CLOCK).item
    assert view is not None
    shown = [(o.id, o.text) for o in view.options or []]
    choice = simulated_choice(bank.item(view.item_id), shown, True, np.random.default_rng(0))
    return {"schema_version": 2, "event_id": EVENT_ID, "session_id": SESSION_ID, "student_id": STUDENT_ID,
            "item_id": view.item_id, "seq": view.seq, "choice": choice,
            "answered_at": "2026-01-05T09:00:20+00:00", "response_time_ms": 20000}


def make_samples() -> dict[str, Any]:
    """``{"events/NAME.json": payload, "events/fixtures/NAME.json": payload}``."""
    bank = sample_bank()
    session = sample_session(bank)
    banks = MemoryBanks()
    banks.publish(bank)
    banks.put_test(sample_test())
    sessions = MemorySessions(catalog=banks, students=MemoryStudents())
    sessions.create(session)
    good = kinesis_record(answer_event(session, bank))
    bad = kinesis_record({"schema_version": 2, "session_id": SESSION_ID, "choice": ["A", "B"]},
                         "49650000000000000000000000000000000000000000000000000002")
    updated = update_theta(Step(record=good), sessions, banks)
    checked = check_end_condition(updated.model_copy(deep=True), banks)
    selected = select_next_item(checked.model_copy(deep=True), banks)
    finishing = checked.model_copy(update={"stop_reason": "se_threshold"}, deep=True)
    rejected = update_theta(Step(record=bad), sessions, banks)

    fixed: dict[str, Any] = {"request_id": REQUEST_ID, "time_epoch_ms": int(CLOCK.timestamp() * 1000)}
    student = id_token_claims(STUDENT_ID)  # API Gateway's JWT authorizer passes these on

    def dump(step: Step) -> dict[str, Any]:
        return step.model_dump(mode="json")

    return {
        "events/start_session.json": start_session_event(STUDENT_ID, TEST_ID, claims=student, **fixed),
        "events/get_session.json": get_session_event(SESSION_ID, claims=student, **fixed),
        "events/publish_answer.json": http_event(
            "POST", f"/sessions/{SESSION_ID}/answers", answer_event(session, bank),
            path_parameters={"session_id": SESSION_ID}, route_key="POST /sessions/{session_id}/answers",
            claims=student, **fixed),
        "events/list_sessions.json": http_event(
            "GET", f"/tests/{TEST_ID}/sessions", path_parameters={"test_id": TEST_ID},
            route_key="GET /tests/{test_id}/sessions", claims=id_token_claims(TEACHER_ID, ("teachers",)), **fixed),
        "events/accommodations.json": http_event(
            "PUT", f"/students/{STUDENT_ID}/accommodations",
            {"test_id": TEST_ID, "extended_time": 1.5, "text_to_speech": True},
            path_parameters={"student_id": STUDENT_ID}, route_key="PUT /students/{student_id}/accommodations",
            claims=id_token_claims(TEACHER_ID, ("teachers",)), **fixed),
        "events/update_theta.json": dump(Step(record=good)),
        "events/check_end_condition.json": dump(updated),
        "events/select_next_item.json": dump(checked),
        "events/finish_session.json": dump(finishing),
        "events/commit_step.json": dump(selected),
        "events/record_outcome.json": dump(rejected),
        # the state machine's input: the Pipe's batch as its enrichment passes it on
        "events/state_machine.json": by_session([good, bad]),
        # the Pipe's enrichment: the answer passes on, the oversized record is quarantined
        "events/screen_batch.json": [good, kinesis_record({"padding": "x" * 5000},
                                                          "49650000000000000000000000000000000000000000000000000003")],
        # the table's stream after CommitStep's write: ShipHistory ships the write's outbox
        "events/ship_history.json": {"Records": [outbox_stream_record(selected, bank)]},
        "events/fixtures/bank.json": json.loads(bank.model_dump_json(exclude_none=True)),
        "events/fixtures/test.json": sample_test().model_dump(mode="json"),
        "events/fixtures/session.json": session.model_dump(mode="json"),
    }


def outbox_stream_record(step: Step, bank: ItemBank) -> dict[str, Any]:
    """A DynamoDB stream record (NEW_IMAGE) of the session write that commits ``step``: the
    stored state and its outbox, as DynamoSessions writes them."""
    assert step.session is not None
    record = answer_record(step).model_copy(update={"processed_at": CLOCK})
    state = step.session
    return {
        "eventID": "1", "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"pk": {"S": f"SESSION#{step.session.session_id}"}, "sk": {"S": "STATE"}},
            "NewImage": {"pk": {"S": f"SESSION#{step.session.session_id}"}, "sk": {"S": "STATE"},
                         "version": {"N": str(state.version + 1)}, "status": {"S": state.status},
                         "student_id": {"S": state.student_id},
                         "doc": {"S": json.dumps(pack(state, bank), separators=(",", ":"))},
                         "outbox": {"S": pack_outbox([record], state_context(state))}},
            "SequenceNumber": "1100000000017454423009", "SizeBytes": 1024, "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/irtcat-local-StateTable/stream/sample",
    }


def render(payload: Any) -> str:
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def write_samples(root: str | Path) -> list[Path]:
    """(Re)write ``events/`` under ``root``."""
    paths = []
    for rel, payload in make_samples().items():
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(payload), encoding="utf-8")
        paths.append(path)
    return paths


def seed_fixtures(root: str | Path, table: str, bank_bucket: str) -> None:
    """Put the fixtures (bank, test, session) into a stack so that every sample event runs."""
    import boto3

    from ..adapters.aws import DynamoSessions, S3BankStore, Settings

    fixtures = Path(root) / "events" / "fixtures"
    bank = ItemBank.model_validate_json((fixtures / "bank.json").read_text())
    test = TestDefinition.model_validate_json((fixtures / "test.json").read_text())
    session = SessionState.model_validate_json((fixtures / "session.json").read_text())
    settings = Settings(table, bank_bucket, "-", "-")
    store = S3BankStore(settings)
    store.publish(bank)
    store.put_test(test)
    ddb = boto3.client("dynamodb")
    ddb.delete_item(TableName=table, Key={"pk": {"S": f"SESSION#{session.session_id}"}, "sk": {"S": "STATE"}})
    ddb.delete_item(TableName=table, Key={"pk": {"S": f"STUDENT#{session.student_id}"},
                                          "sk": {"S": f"LATEST#{session.test_id}"}})
    DynamoSessions(settings, store).create(session)
