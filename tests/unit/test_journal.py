"""The local stack's persistence: which requests the journal keeps, a journal cut short by a
crash, replay into a fresh moto, and the checkpoints the Pipe and the stream pollers resume from."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from irtcat.emulator.journal import Checkpoints, Entry, Journal, changes_state, entries, operation, replay
from irtcat.emulator.pipe import _Progress


def _environ(method: str = "POST", target: str = "", path: str = "/", content_type: str = "application/x-amz-json-1.0",
             body: bytes = b"", query: str = "") -> dict[str, Any]:
    env: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                           "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
                           "wsgi.input": io.BytesIO(body)}
    if target:
        env["HTTP_X_AMZ_TARGET"] = target
    return env


@pytest.mark.parametrize(("target", "kept"), [
    ("DynamoDB_20120810.PutItem", True), ("DynamoDB_20120810.TransactWriteItems", True),
    ("DynamoDB_20120810.GetItem", False), ("DynamoDB_20120810.Query", False), ("DynamoDB_20120810.Scan", False),
    ("DynamoDB_20120810.BatchGetItem", False), ("Kinesis_20131202.PutRecord", True),
    ("Kinesis_20131202.GetRecords", False), ("Kinesis_20131202.GetShardIterator", False),
    ("AWSStepFunctions.StartSyncExecution", False), ("AmazonSQS.SendMessage", True),
    ("AmazonSQS.ReceiveMessage", False), ("AWSCognitoIdentityProviderService.AdminCreateUser", True),
    ("AWSCognitoIdentityProviderService.InitiateAuth", False), ("Firehose_20150804.PutRecordBatch", True),
])
def test_the_journal_keeps_state_changes_and_leaves_reads_and_side_effects(target: str, kept: bool) -> None:
    assert changes_state(_environ(target=target), b"") is kept


def test_rest_and_query_protocol_requests_are_told_apart_by_method_and_action() -> None:
    assert changes_state(_environ("PUT", path="/bucket/key", content_type=""), b"")
    assert changes_state(_environ("DELETE", path="/bucket/key", content_type=""), b"")
    assert not changes_state(_environ("GET", path="/bucket/key", content_type=""), b"")
    assert not changes_state(_environ("HEAD", path="/bucket/key", content_type=""), b"")
    form = "application/x-www-form-urlencoded"
    assert operation(_environ(content_type=form), b"Action=SendMessage&QueueUrl=x") == "SendMessage"
    assert not changes_state(_environ(content_type=form), b"Action=ReceiveMessage&QueueUrl=x")
    assert not changes_state(_environ("POST", path="/moto-api/reset"), b"")
    assert not changes_state(_environ("POST", path="/_irtcat/journal"), b"")


def test_a_line_torn_by_a_crash_is_left_out_and_the_rest_replays_in_order(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    for n in range(3):
        journal.append(Entry("POST", "/", "", {"HTTP_X_AMZ_TARGET": "Kinesis_20131202.PutRecord"}, f"{n}".encode()))
    journal.close()
    with open(path, "ab") as f:
        f.write(b'{"m":"POST","p":"/","q":"","h":{},"b":"')  # the process died mid-write
    assert [e.body for e in entries(path)] == [b"0", b"1", b"2"]

    seen: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        seen.append(body)
        start_response("200 OK" if body != b"1" else "400 Bad Request", [])
        return [b"{}"]

    done = replay(path, app)
    assert seen == [b"0", b"1", b"2"]
    assert done.requests == 3 and done.failed == 1 and "PutRecord" in done.failures[0]


def test_replay_rebuilds_moto_state_from_journaled_requests(tmp_path: Path, fake_aws: None) -> None:
    """Requests journaled from one moto server, replayed into a fresh one: the same items, and
    Kinesis sequence numbers that come out the same (what the Pipe's checkpoint relies on)."""
    import boto3
    from irtcat.emulator.server import EmulatorServer

    def serve(journal: Path) -> tuple[EmulatorServer, Any]:
        server = EmulatorServer({}, service_processes=(), state_machines=False)
        server.start()
        return server, server.gateway.persist(journal)

    server, first = serve(tmp_path / "j.jsonl")
    assert first.requests == 0
    try:
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        kinesis.create_stream(StreamName="s", ShardCount=1)
        for n in range(5):
            ddb.put_item(TableName="t", Item={"pk": {"S": f"k{n}"}, "n": {"N": str(n)}})
        ddb.delete_item(TableName="t", Key={"pk": {"S": "k0"}})
        ddb.get_item(TableName="t", Key={"pk": {"S": "k1"}})  # a read: not journaled
        sequence = [kinesis.put_record(StreamName="s", Data=f"r{n}".encode(), PartitionKey="p")["SequenceNumber"]
                    for n in range(3)]
    finally:
        server.stop()
    assert sum(1 for _ in entries(tmp_path / "j.jsonl")) == 2 + 5 + 1 + 3

    server, again = serve(tmp_path / "j.jsonl")
    try:
        assert again.requests == 11 and again.failed == 0
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        items = sorted(i["pk"]["S"] for i in ddb.scan(TableName="t")["Items"])
        assert items == ["k1", "k2", "k3", "k4"]
        shard = kinesis.list_shards(StreamName="s")["Shards"][0]["ShardId"]
        it = kinesis.get_shard_iterator(StreamName="s", ShardId=shard,
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = kinesis.get_records(ShardIterator=it)["Records"]
        assert [r["SequenceNumber"] for r in records] == sequence
        assert [r["Data"] for r in records] == [b"r0", b"r1", b"r2"]
    finally:
        server.stop()


def test_checkpoints_survive_a_new_process_and_move_only_past_records_all_delivered(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.json"
    progress = _Progress("shard-1", Checkpoints(path), "pipe")
    progress.read(["1", "2", "3", "4"])
    progress.delivered(["3", "4"])  # a later lane finished first
    assert Checkpoints(path).get("pipe", "shard-1") is None
    progress.delivered(["1"])
    assert Checkpoints(path).get("pipe", "shard-1") == "1"
    progress.delivered(["2"])
    assert Checkpoints(path).get("pipe", "shard-1") == "4"
    assert json.loads(path.read_text()) == {"pipe|shard-1": "4"}


def test_a_corrupt_journal_is_refused_with_where_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).append(Entry("POST", "/", "", {}, b"0"))
    with open(path, "ab") as f:
        f.write(b"not a journal line\n")
    with pytest.raises(ValueError, match=r"journal.jsonl, line 2: not a journal entry .*--fresh"):
        list(entries(path))
