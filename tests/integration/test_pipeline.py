"""The whole pipeline: Kinesis -> Pipe -> Express state machine -> handlers -> DynamoDB and
Firehose/S3, on the embedded local stack (or a deployed one, see targets.py)."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from irtcat.domain.bank import ItemBank
from irtcat.domain.generate import generate_bank
from irtcat.domain.policy import StoppingPolicy, TestDefinition, TestPolicy
from irtcat.domain.scoring import simulated_choice
from irtcat.domain.session import event_digest
from irtcat.emulator.api import get_session_event, id_token_claims, start_session_event

from .targets import Target, encode, make_target, stream_records

pytestmark = pytest.mark.integration
TEST_ID = "it-math"


BANK = generate_bank(150, seed=11, bank_id="it-math")


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = make_target()
    bank = BANK
    t.load(bank, TestDefinition(test_id=TEST_ID, bank_id="it-math",
                                policy=TestPolicy(stopping=StoppingPolicy(max_items=8, min_items=3))))
    yield t
    t.close()


def local_only(target: Target) -> None:
    if not target.local:
        pytest.skip("needs the local runtime's fault injection (not available on a deployed stack)")


def run_interleaved(threads: list[threading.Thread]) -> None:
    """Run the threads to the end with a 10 µs switch interval: the threads of this process (the
    emulator's request threads among them) interleave often, so races show up."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(switch)


class Student:
    def __init__(self, target: Target, student_id: str | None = None, test_id: str = TEST_ID,
                 bank: ItemBank = BANK) -> None:
        self.t = target
        self.bank = bank
        self.student_id = student_id or f"it-{uuid.uuid4().hex[:8]}"
        status, body = target.api("StartSessionFunction", start_session_event(self.student_id, test_id,
                                                                          claims=id_token_claims(self.student_id)))
        assert status == 201, body
        self.view = body
        self.sent: list[dict[str, Any]] = []

    @property
    def session_id(self) -> str:
        return str(self.view["session_id"])

    def event(self, correct: int = 1, **over: Any) -> dict[str, Any]:
        """The answer to the item shown: the choice a student who knows (or not) would make."""
        item = self.view["item"]
        shown = [(o["id"], o["text"]) for o in item.get("options") or []]
        choice = simulated_choice(self.bank.item(item["item_id"]), shown, bool(correct),
                                  np.random.default_rng(item["seq"]))
        ev = {"schema_version": 2, "event_id": str(uuid.uuid4()), "session_id": self.session_id,
              "student_id": self.student_id, "item_id": item["item_id"], "seq": item["seq"], "choice": choice,
              "answered_at": datetime.now(UTC).isoformat()}
        ev.update(over)
        return ev

    def send(self, ev: dict[str, Any]) -> None:
        self.t.publish(encode(ev), self.session_id)
        self.sent.append(ev)

    def refresh(self) -> dict[str, Any]:
        status, body = self.t.api("GetSessionFunction", get_session_event(self.session_id,
                                                                      claims=id_token_claims(self.student_id)))
        assert status == 200
        self.view = body
        return body

    def wait_answered(self, n: int, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            v = self.refresh()
            return v if v["answered"] >= n or v["status"] == "finished" else None

        return self.t.wait_for(done, timeout, f"{self.session_id} to reach {n} answers")

    def answer(self, correct: int = 1, resend: bool = False) -> None:
        ev = self.event(correct)
        self.send(ev)
        if resend:
            self.send(ev)
        self.wait_answered(int(self.view["answered"]) + 1)

    def finish(self, resend_every: int = 0) -> None:
        k = 0
        while self.view["status"] == "active":
            k += 1
            self.answer(correct=k % 2, resend=bool(resend_every and k % resend_every == 0))


def applied_history(target: Target, session_id: str) -> Counter[int]:
    return Counter(r.seq for r in target.history()
                   if r.session_id == session_id and r.record_type == "answer" and r.outcome == "applied")


def wait_history(target: Target, session_id: str, n: int) -> Counter[int]:
    """History lands after the state write (commit, then Firehose): wait for ``n`` answers."""

    def complete() -> Counter[int] | None:
        c = applied_history(target, session_id)
        return c if len(c) >= n else None

    return target.wait_for(complete, 30 + target.history_settle_seconds(), f"{n} history records")


def test_every_answer_is_applied_exactly_once_in_state_and_history(target: Target) -> None:
    students = [Student(target) for _ in range(4)]
    threads = [threading.Thread(target=s.finish, kwargs={"resend_every": 3}) for s in students]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    for s in students:
        state = target.session(s.session_id)
        assert state.status == "finished"
        unique = {(e["seq"]) for e in s.sent}
        assert [x.seq for x in state.served if x.response is not None] == sorted(unique)
        counts = wait_history(target, s.session_id, len(unique))
        assert set(counts.values()) == {1}, counts
        finished = [r for r in target.history() if r.session_id == s.session_id and r.record_type == "session"]
        assert len(finished) == 1 and finished[0].items_answered == state.scored_answered


def test_redelivered_and_reordered_answers_change_nothing(target: Target) -> None:
    s = Student(target)
    first = s.event(1)
    s.send(first)
    s.wait_answered(1)
    second = s.event(0)
    s.send(second)
    s.wait_answered(2)
    before = target.session(s.session_id)
    # a replayed old batch: the second answer again, then the first (reordered), and the
    # first again under a new event_id (a tablet that lost its acknowledgement)
    s.send(second)
    s.send(first)
    s.send(dict(first, event_id=str(uuid.uuid4())))
    marker = s.event(1)
    s.send(marker)  # processed after the replays on the same shard
    s.wait_answered(3)
    after = target.session(s.session_id)
    assert after.served[:2] == before.served[:2]
    assert after.version == before.version + 1
    dup = [r for r in target.history() if r.session_id == s.session_id and r.outcome == "duplicate"]
    assert len(dup) == 3


def test_rejected_events_are_recorded_with_a_reason_and_parked_for_replay(target: Target) -> None:
    s = Student(target)
    garbage = b'{"this is": not json'
    target.publish(garbage, s.session_id)
    wrong_item = s.event(1, item_id="i00149" if s.view["item"]["item_id"] != "i00149" else "i00148")
    s.send(wrong_item)
    intruder = s.event(1, student_id="someone-else")
    s.send(intruder)
    s.answer(1)  # the good answer still goes through behind the bad ones
    assert target.session(s.session_id).answered == 1

    def parked() -> list[dict[str, Any]] | None:
        items = [q for q in target.quarantined() if s.session_id in q["raw"] or q["raw"] == garbage.decode()]
        return items if len(items) >= 3 else None

    items = target.wait_for(parked, 30, "quarantined events")
    reasons = {q["reason"] for q in items}
    assert "payload is not JSON" in reasons
    assert any("is not the item served" in r for r in reasons)
    assert "session belongs to another student" in reasons
    rejected = [r for r in target.history() if r.outcome == "rejected" and r.session_id == s.session_id]
    assert len(rejected) >= 2 and all(r.reason and r.raw_event for r in rejected)


def test_throttled_lambda_is_retried_by_the_state_machine(target: Target) -> None:
    local_only(target)
    rt = target.rt  # type: ignore[attr-defined]
    s = Student(target)
    before = dict(rt.server.gateway.faults.injected)
    rt.server.gateway.faults.set("lambda", 0.3)
    try:
        for _ in range(3):
            s.answer(1)
    finally:
        rt.server.gateway.faults.set("lambda", 0.0)
    assert rt.server.gateway.faults.injected.get("lambda", 0) > before.get("lambda", 0)
    assert target.session(s.session_id).answered == 3
    assert wait_history(target, s.session_id, 3) == Counter({1: 1, 2: 1, 3: 1})


def test_failed_execution_is_retried_by_the_pipe_and_applied_once(target: Target) -> None:
    local_only(target)
    rt = target.rt  # type: ignore[attr-defined]
    s = Student(target)
    retried = rt.pipe.stats.retried
    rt.server.gateway.faults.fail_next("CommitStepFunction", 2)  # not in the Retry list: the execution fails
    s.answer(1)
    assert rt.pipe.stats.retried >= retried + 1
    assert target.session(s.session_id).answered == 1
    assert wait_history(target, s.session_id, 1) == Counter({1: 1})


def test_throttled_dynamodb_and_firehose_lose_nothing(target: Target) -> None:
    local_only(target)
    rt = target.rt  # type: ignore[attr-defined]
    s = Student(target)
    faults = rt.server.gateway.faults
    faults.set("dynamodb", 0.2)
    faults.set("firehose", 0.2)
    try:
        for _ in range(3):
            s.answer(0)
    finally:
        faults.set("dynamodb", 0.0)
        faults.set("firehose", 0.0)
    assert target.session(s.session_id).answered == 3
    assert wait_history(target, s.session_id, 3) == Counter({1: 1, 2: 1, 3: 1})


def test_racing_executions_on_one_session_never_lose_an_update(target: Target) -> None:
    local_only(target)
    rt = target.rt  # type: ignore[attr-defined]
    from irtcat.emulator.pipe import pipe_record

    s = Student(target)
    a = s.event(1)
    b = dict(s.event(0), event_id=str(uuid.uuid4()))

    def record(ev: dict[str, Any], seq: str) -> dict[str, Any]:
        import time

        raw = {"SequenceNumber": seq, "PartitionKey": s.session_id, "Data": json.dumps(ev).encode(),
               "ApproximateArrivalTimestamp": time.time()}
        return pipe_record(raw, "shardId-race", rt.pipe.settings)

    results: list[tuple[bool, str]] = []
    conflicts = rt.server.gateway.errors.get("CommitStepFunction:Conflict", 0)
    rt.server.gateway.faults.slow("CommitStepFunction", 1.5)  # both read version 0, even on a busy machine
    def run(ev: dict[str, Any], seq: str) -> None:  # as the Pipe's enrichment groups it
        results.append(rt.pipe.run_execution([{"session_id": s.session_id, "records": [record(ev, seq)]}]))

    threads = [threading.Thread(target=run, args=(ev, q)) for ev, q in ((a, "1"), (b, "2"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    rt.server.gateway.faults.slow("CommitStepFunction", 0.0)
    assert all(ok for ok, _ in results), results
    # the loser's conditional write failed, it re-read the session and found a duplicate
    assert rt.server.gateway.errors.get("CommitStepFunction:Conflict", 0) == conflicts + 1
    state = target.session(s.session_id)
    assert state.answered == 1 and state.version == 1
    wait_history(target, s.session_id, 1)  # shipped from the write's outbox, a moment later

    def both() -> Counter[str | None] | None:
        outcomes = Counter(r.outcome for r in target.history() if r.session_id == s.session_id and r.seq == 1)
        return outcomes if outcomes["duplicate"] >= 1 else None

    outcomes = target.wait_for(both, 30, "the duplicate's record")
    assert outcomes["applied"] == 1 and outcomes["duplicate"] == 1


def test_runs_against_a_deployed_stack_when_configured() -> None:
    import os

    if not os.environ.get("IRTCAT_STACK_NAME"):
        pytest.skip("IRTCAT_STACK_NAME is not set: the suite ran on the embedded local stack; "
                    "set it (and credentials or AWS_ENDPOINT_URL) to run the same tests on a deployed stack")
    t = make_target()
    assert {"AnswerStreamName", "StateTableName", "HistoryBucketName"} <= set(t.outputs)


def test_poison_records_are_quarantined_in_their_first_batch_and_never_stall_the_shard(target: Target) -> None:
    """Records Kinesis takes but no answer event can be (up to 1 MiB, binary, deeply nested, not
    UTF-8) are parked with their reason by the Pipe's enrichment, so no execution fails, nothing
    is dead-lettered, and the answers around them go through."""
    s = Student(target)
    tag = uuid.uuid4().hex
    poison = {
        "1 MiB": b'{"tag": "' + tag.encode() + b'", "pad": "' + b"x" * (1024 * 1024 - 200) + b'"}',
        "300 KB": json.dumps({"tag": tag, "pad": "y" * 300_000}).encode(),
        "deep": b'{"tag": "' + tag.encode() + b'", "x": ' + b"[" * 1900 + b"]" * 1900 + b"}",  # < 4 KiB
        "binary": tag.encode() + bytes(range(256)) * 8,
        "latin-1": f'{{"tag": "{tag}", "name": "caf\u00e9"}}'.encode("latin-1"),
    }
    stats = target.rt.pipe.stats if target.local else None  # type: ignore[attr-defined]
    failed_before = (stats.executions_failed, stats.dead_lettered) if stats else (0, 0)
    s.answer(1)
    started = time.monotonic()
    for payload in poison.values():
        target.publish(payload, s.session_id)
    s.answer(0)  # behind the poison, on the same shard and lane
    elapsed = time.monotonic() - started

    def parked() -> list[dict[str, Any]] | None:
        items = [q for q in target.quarantined() if tag in q["raw"]]
        return items if len(items) >= len(poison) else None

    items = target.wait_for(parked, 60, "the poison records in quarantine")
    reasons = [q["reason"] for q in items]
    assert sum("exceeds" in r for r in reasons) == 2 and sum("not JSON" in r for r in reasons) == 2
    assert sum("nested too deeply" in r for r in reasons) == 1
    assert any(len(q["raw"]) >= 1024 * 1024 - 200 for q in items)  # the raw payload whole, in S3
    assert elapsed < 15, f"the answer behind the poison took {elapsed:.1f} s"
    assert target.session(s.session_id).answered == 2
    if stats is not None:
        assert (stats.executions_failed, stats.dead_lettered) == failed_before
        assert stats.enriched_out >= len(poison)


def test_dead_lettered_batch_is_listed_and_replayed_once(target: Target) -> None:
    local_only(target)
    rt = target.rt  # type: ignore[attr-defined]
    from irtcat.adapters.replay import list_dlq, replay

    s = Student(target)
    queue = target.outputs["PipeDeadLetterQueueUrl"]
    rt.server.gateway.faults.fail_next("UpdateThetaFunction", 1000)  # fails past every retry
    ev = s.event(1)
    s.send(ev)
    parked: list[Any] = []

    def ours_parked() -> bool:
        # another batch in flight may be dead-lettered too: wait for this session's, not a count
        parked[:] = [p for p in list_dlq(queue) if any(s.session_id.encode() in r for r in p.records)]
        return bool(parked)

    try:
        target.wait_for(ours_parked, 90, "the batch to be dead-lettered")
    finally:
        rt.server.gateway.faults.fail_next("UpdateThetaFunction", 0)
    assert "InjectedFault" in parked[0].reason
    assert target.session(s.session_id).answered == 0
    replay(parked, target.outputs["AnswerStreamName"], queue_url=queue)
    s.wait_answered(1)
    replay(parked, target.outputs["AnswerStreamName"])  # a second replay changes nothing
    s.send(s.event(0))
    s.wait_answered(2)
    assert wait_history(target, s.session_id, 2) == Counter({1: 1, 2: 1})
    assert not [p for p in list_dlq(queue) if any(s.session_id.encode() in r for r in p.records)]


def test_concurrent_requests_to_different_functions_never_see_each_others_request(target: Target) -> None:
    """Each function's container serves one request at a time and only its own: a student's
    poll is never answered (or refused) with another request's claims or body, however many
    students call different functions at once."""
    pollers = [Student(target) for _ in range(4)]
    mixed: list[Any] = []

    def poll(s: Student) -> None:
        for _ in range(15):
            status, body = target.api("GetSessionFunction", get_session_event(
                s.session_id, claims=id_token_claims(s.student_id)))
            if status != 200 or body.get("session_id") != s.session_id:
                mixed.append(("poll", status, body))

    def start() -> None:
        for _ in range(15):
            student = f"it-{uuid.uuid4().hex[:8]}"
            status, body = target.api("StartSessionFunction", start_session_event(
                student, TEST_ID, claims=id_token_claims(student)))
            if status != 201 or body.get("student_id") != student:
                mixed.append(("start", status, body))

    threads = [threading.Thread(target=poll, args=(s,)) for s in pollers]
    threads += [threading.Thread(target=start) for _ in range(2)]
    run_interleaved(threads)
    assert not mixed, mixed[:3]


def test_the_emulators_failed_transactions_never_undo_other_writes(target: Target) -> None:
    """moto rolls a failed TransactWriteItems back by restoring a copy of the whole table; the
    local gateway serialises DynamoDB calls so that a concurrent write is never undone (on AWS
    a transaction only ever touches its own items)."""
    local_only(target)
    import boto3
    from botocore.exceptions import ClientError

    table = target.outputs["StateTableName"]
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    prefix = f"EMU#{uuid.uuid4().hex[:8]}#"
    stop = threading.Event()

    def failing_transactions() -> None:
        while not stop.is_set():
            with contextlib.suppress(ClientError):  # the condition fails: moto rolls back
                ddb.transact_write_items(TransactItems=[{"Put": {
                    "TableName": table, "Item": {"pk": {"S": prefix + "tx"}, "sk": {"S": "x"}},
                    "ConditionExpression": "attribute_exists(pk)"}}])

    threads = [threading.Thread(target=failing_transactions) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for k in range(150):
            ddb.put_item(TableName=table, Item={"pk": {"S": f"{prefix}{k}"}, "sk": {"S": "x"}})
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    missing = [k for k in range(150) if "Item" not in ddb.get_item(
        TableName=table, Key={"pk": {"S": f"{prefix}{k}"}, "sk": {"S": "x"}})]
    assert not missing, f"{len(missing)} writes undone by a failed transaction"


def test_the_emulators_stream_keeps_every_record_of_concurrent_producers(target: Target) -> None:
    """moto numbers a shard's records as "last sequence number + 1" without a lock, so two
    concurrent PutRecord calls can get the same number and one record replaces the other: a
    lost answer. The local gateway serialises Kinesis calls (on AWS every record of a shard
    gets its own sequence number)."""
    local_only(target)
    import boto3

    kinesis = boto3.client("kinesis", region_name="us-east-1")
    stream = f"emu-{uuid.uuid4().hex[:8]}"  # not the answer stream: the Pipe must not read these
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    producers, per_producer = 6, 40

    def produce(p: int) -> None:
        for k in range(per_producer):
            kinesis.put_record(StreamName=stream, Data=f"{p}:{k}".encode(), PartitionKey="same-shard")

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    run_interleaved(threads)
    seen = stream_records(stream)
    kinesis.delete_stream(StreamName=stream)
    expected = {f"{p}:{k}".encode() for p in range(producers) for k in range(per_producer)}
    assert len(seen) == len(expected), f"{len(expected) - len(seen)} records lost"
    assert set(seen) == expected


def test_the_emulator_answers_start_sync_execution_as_aws_does(target: Target) -> None:
    """moto lacks StartSyncExecution; the gateway serves it (the Pipe stand-in relies on it)."""
    local_only(target)
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    sfn = boto3.client("stepfunctions", region_name="us-east-1", config=Config(inject_host_prefix=False))
    answers = target.rt.pipe.settings.state_machine_arn  # type: ignore[attr-defined]
    done = sfn.start_sync_execution(stateMachineArn=answers, input="[]")
    assert done["status"] == "SUCCEEDED" and json.loads(done["output"]) == {"sessions": 0}
    assert done["stopDate"] >= done["startDate"]
    # it ran as Express: its events carry no state input (moto ran every machine as STANDARD)
    events = sfn.get_execution_history(executionArn=done["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"] for e in events if "stateEnteredEventDetails" in e]
    assert entered and all(d["input"] == "" for d in entered)
    failed = sfn.start_sync_execution(stateMachineArn=answers, input='{"not": "a batch"}')
    assert failed["status"] == "FAILED" and failed["error"].startswith("States.")
    with pytest.raises(ClientError, match="StateMachineTypeNotSupported"):
        sfn.start_sync_execution(stateMachineArn=target.outputs["CalibrationStateMachineArn"], input="{}")
    with pytest.raises(ClientError, match="StateMachineDoesNotExist"):
        sfn.start_sync_execution(stateMachineArn=answers + "-nope", input="[]")
    with pytest.raises(ClientError, match="InvalidExecutionInput"):
        sfn.start_sync_execution(stateMachineArn=answers, input="[not json")
    import urllib.request
    from urllib.error import HTTPError

    endpoint = target.rt.endpoint  # type: ignore[attr-defined]
    malformed = [  # refused with a reason, not a crash
        urllib.request.Request(endpoint + "/", data=b"{not json", method="POST",
                               headers={"X-Amz-Target": "AWSStepFunctions.StartSyncExecution"}),
        urllib.request.Request(endpoint + "/_irtcat/faults", data=b'{"service": "dynamodb"}', method="POST"),
    ]
    for request in malformed:
        with pytest.raises(HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400
        assert json.loads(refused.value.read())["message"]


def test_dynamodb_and_kinesis_live_in_their_own_emulator_process_behind_the_one_endpoint(target: Target) -> None:
    """DynamoDB and Kinesis are served by a second emulator process (its own core); the stack's
    clients call it directly, any other client through the one endpoint, and its faults are
    switched and counted from here like the others'."""
    local_only(target)
    import os

    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    rt = target.rt  # type: ignore[attr-defined]
    direct = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
    assert direct != rt.endpoint and rt.server.services.process.poll() is None
    table = target.outputs["StateTableName"]
    via_gateway = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=rt.endpoint)
    key = {"pk": {"S": f"EMU#{uuid.uuid4().hex[:8]}"}, "sk": {"S": "x"}}
    via_gateway.put_item(TableName=table, Item=key)
    assert "Item" in boto3.client("dynamodb", region_name="us-east-1").get_item(TableName=table, Key=key)
    before = rt.server.gateway.faults.injected.get("dynamodb", 0)
    rt.server.gateway.faults.set("dynamodb", 1.0)
    try:
        with pytest.raises(ClientError, match="ThrottlingException"):
            boto3.client("dynamodb", region_name="us-east-1",
                         config=Config(retries={"max_attempts": 1})
                         ).get_item(TableName=table, Key=key)
    finally:
        rt.server.gateway.faults.set("dynamodb", 0.0)
    assert rt.server.gateway.faults.injected.get("dynamodb", 0) >= before + 1
    # Kinesis lives there too: a record put through the one endpoint is read back directly
    assert os.environ["AWS_ENDPOINT_URL_KINESIS"] == direct
    stream = target.outputs["AnswerStreamName"]
    kinesis_via_gateway = boto3.client("kinesis", region_name="us-east-1", endpoint_url=rt.endpoint)
    put = kinesis_via_gateway.put_record(StreamName=stream, Data=b"not an answer", PartitionKey="emu-probe")
    direct_kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=direct)
    iterator = direct_kinesis.get_shard_iterator(StreamName=stream, ShardId=put["ShardId"],
                                                 ShardIteratorType="AT_SEQUENCE_NUMBER",
                                                 StartingSequenceNumber=put["SequenceNumber"])["ShardIterator"]
    assert direct_kinesis.get_records(ShardIterator=iterator, Limit=1)["Records"][0]["Data"] == b"not an answer"


def test_the_stack_warms_every_session_function_and_leaves_calibration_cold(target: Target) -> None:
    """After `up`, one container of each per-session and per-answer function starts in the
    background (the demo waits for them); the calibration functions start on first use."""
    local_only(target)
    rt = target.rt  # type: ignore[attr-defined]
    assert 0 < rt.wait_warm(timeout=60) < 120
    from irtcat.emulator.containers import ContainerPool

    for pool in rt.stack.runners.values():
        assert isinstance(pool, ContainerPool)
        if pool.spec.logical_id.startswith("Calibration"):
            continue  # cold unless a test of this worker already ran a calibration
        assert pool.cold_starts >= 1, f"{pool.spec.logical_id} has no started container"


# the functions behind the stream (a tablet's own API calls would need a retry of their own)
PIPELINE_FUNCTIONS = ("UpdateTheta", "CheckEndCondition", "SelectNextItem", "CommitStep", "FinishSession",
                      "RecordOutcome", "ScreenBatch", "ShipHistory")


def _container_pids() -> list[int]:
    """The pipeline's Lambda containers of this process's local stack: children of its container
    zygote, named after their function (the first 15 characters)."""
    import os
    from pathlib import Path

    def parent_of(pid: str) -> int | None:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None

    procs = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()]
    zygotes = [int(p) for p in procs if parent_of(p) == os.getpid()
               and b"irtcat.emulator.zygote" in Path(f"/proc/{p}/cmdline").read_bytes()]
    names = tuple(f"{name}Function"[:15] for name in PIPELINE_FUNCTIONS)

    def comm(pid: str) -> str:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return ""

    return [int(p) for p in procs if parent_of(p) in zygotes and comm(p) in names]


def test_a_kill_storm_loses_no_answer_and_no_history_record(target: Target) -> None:
    """Lambda containers killed with SIGKILL at random while tablets answer (a container may die
    between the session write and anything after it): every answer is applied once, and every
    applied answer has its applied record in the history."""
    local_only(target)
    import os
    import random
    import signal

    rng = random.Random(7)
    stop = threading.Event()
    kills: list[int] = []

    def storm() -> None:
        while not stop.wait(rng.uniform(0.3, 0.7)):
            pids = _container_pids()
            if pids:
                pid = rng.choice(pids)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)

    students = [Student(target) for _ in range(6)]
    errors: list[BaseException] = []

    def take_test(s: Student) -> None:
        try:
            s.finish()
        except BaseException as exc:
            errors.append(exc)

    killer = threading.Thread(target=storm, daemon=True)
    killer.start()
    runners = [threading.Thread(target=take_test, args=(s,)) for s in students]
    for t in runners:
        t.start()
    time.sleep(12)
    stop.set()
    for t in runners:
        t.join(timeout=240)
    assert not errors, errors
    assert len(kills) >= 8, f"only {len(kills)} containers killed"
    assert target.rt.wait_idle(timeout=120)  # type: ignore[attr-defined]
    for s in students:
        state = target.session(s.session_id)
        assert state.status == "finished"
        in_state = [a.event_digest for a in state.served if a.response is not None]
        assert len(in_state) == len(set(in_state)) == state.answered  # none applied twice
        wait_history(target, s.session_id, state.answered)
        in_history = {event_digest(r.event_id or "") for r in target.history() if r.session_id == s.session_id
                      and r.record_type == "answer" and r.outcome == "applied"}
        assert in_history == set(in_state)  # after de-duplication: one record per applied answer
