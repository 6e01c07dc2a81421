"""The operator's tools for parked events (irtcat dlq list / replay) on moto: listing hides
nothing, every listed id replays, an item that cannot be replayed is reported and the rest go
on, and a second replay changes nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from irtcat.adapters.replay import Parked, list_dlq, list_quarantine, replay

STREAM, BUCKET = "answers", "history"


@pytest.fixture()
def aws(fake_aws: None) -> Iterator[dict[str, Any]]:
    from moto import mock_aws

    with mock_aws():
        boto3.client("kinesis").create_stream(StreamName=STREAM, ShardCount=1)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        queue = boto3.client("sqs").create_queue(QueueName="dlq")["QueueUrl"]
        yield {"queue": queue}


def _dead_letter(queue: str, *events: dict[str, Any] | bytes, failure: str = "States.Timeout") -> None:
    records = [{"data": base64.b64encode(e if isinstance(e, bytes) else json.dumps(e).encode()).decode()}
               for e in events]
    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(
        {"records": records, "context": {"failure": failure, "dead_lettered_at": "2026-12-02T05:00:00Z"}}))


def _quarantine(key: str, raw: str, reason: str) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"quarantine/dt=2026-12-02/{key}.json",
                                  Body=json.dumps({"raw": raw, "reason": reason}).encode())


def _stream() -> list[bytes]:
    kinesis = boto3.client("kinesis")
    shard = kinesis.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return [r["Data"] for r in kinesis.get_records(ShardIterator=it)["Records"]]


def test_listing_hides_nothing_and_a_replay_right_after_finds_everything(aws: dict[str, Any]) -> None:
    _dead_letter(aws["queue"], {"session_id": "s1", "seq": 1}, {"session_id": "s1", "seq": 2})
    _dead_letter(aws["queue"], {"session_id": "s2", "seq": 1})
    first = list_dlq(aws["queue"])
    second = list_dlq(aws["queue"])  # the first listing made nothing invisible
    assert len(first) == len(second) == 2 and {p.id for p in first} == {p.id for p in second}
    report = replay(list_dlq(aws["queue"]), STREAM, queue_url=aws["queue"])
    assert report.sent == 3 and len(report.replayed) == 2 and not report.failed
    assert list_dlq(aws["queue"]) == []
    assert [json.loads(r)["seq"] for r in _stream()] == [1, 2, 1]


def test_every_listed_id_selects_its_item_for_a_replay(aws: dict[str, Any]) -> None:
    _dead_letter(aws["queue"], {"session_id": "a"})
    _dead_letter(aws["queue"], {"session_id": "b"})
    _quarantine("q1", '{"session_id": "c"}', "unknown session")
    listed = list_dlq(aws["queue"]) + list_quarantine(BUCKET)
    for item in listed:
        assert item.summary()["id"] == item.id  # shown whole, usable as it is
        one = [p for p in list_dlq(aws["queue"]) + list_quarantine(BUCKET) if p.id == item.id]
        report = replay(one, STREAM, BUCKET, aws["queue"])
        assert report.replayed == [item.id] and not report.failed
    assert list_dlq(aws["queue"]) == [] and list_quarantine(BUCKET) == []
    assert sorted(json.loads(r)["session_id"] for r in _stream()) == ["a", "b", "c"]


def test_what_cannot_be_replayed_is_reported_and_the_rest_goes_on(aws: dict[str, Any]) -> None:
    deep = b"[" * 5000 + b"]" * 5000  # nested too deeply for a JSON parser
    _dead_letter(aws["queue"], deep)
    boto3.client("sqs").send_message(QueueUrl=aws["queue"], MessageBody="{not json")
    _quarantine("long", json.dumps({"session_id": "x" * 300, "seq": 1}), "invalid event: session_id")
    _quarantine("good", json.dumps({"session_id": "ok", "seq": 1}), "unknown session")
    huge = Parked("quarantine", "quarantine/huge.json", "payload too large", [b"x" * (1024 * 1024 + 1)])
    parked = [*list_dlq(aws["queue"]), *list_quarantine(BUCKET), huge]
    unreadable = [p for p in parked if p.reason.startswith("unreadable")]
    assert len(unreadable) == 1  # listed with its reason, not a traceback
    report = replay(parked, STREAM, BUCKET, aws["queue"])
    assert set(report.failed) == {unreadable[0].id, huge.id}
    assert "unreadable" in report.failed[unreadable[0].id] and "1 MiB" in report.failed[huge.id]
    assert len(report.replayed) == 3 and report.sent == 3  # the deep record, the long id, the good one
    assert [p.id for p in list_dlq(aws["queue"])] == [unreadable[0].id]  # still parked, visible


def test_replaying_twice_changes_nothing(aws: dict[str, Any]) -> None:
    _dead_letter(aws["queue"], {"session_id": "s", "seq": 1})
    parked = list_dlq(aws["queue"])
    assert replay(parked, STREAM, queue_url=aws["queue"]).sent == 1
    again = replay(parked, STREAM, queue_url=aws["queue"])
    assert again.sent == 0 and "no longer in the dead-letter queue" in again.failed[parked[0].id]
    assert len(_stream()) == 1
