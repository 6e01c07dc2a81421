"""The local runtime's drain: "nothing in flight" is not "everything delivered". A record written
just before the question may sit in a read that has not returned yet; the pollers answer only
once a read that started after the question found their shards empty (on in-process moto)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from irtcat.emulator.event_sources import StreamMapping, StreamPoller
from irtcat.emulator.pipe import PipePoller, PipeSettings


@pytest.fixture
def moto_aws(fake_aws: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def emulator(fake_aws: None) -> Iterator[None]:
    """The emulator in server mode (in-process moto does not route DynamoDB Streams)."""
    from irtcat.emulator.server import EmulatorServer

    server = EmulatorServer({}, service_processes=(), state_machines=False)
    server.start()
    try:
        yield
    finally:
        server.stop()


def _wait(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_pipe_is_quiet_only_once_records_put_before_the_question_are_delivered(moto_aws: None) -> None:
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    kinesis.create_stream(StreamName="answers", ShardCount=1)
    arn = kinesis.describe_stream(StreamName="answers")["StreamDescription"]["StreamARN"]
    pipe = PipePoller(PipeSettings(stream_name="answers", stream_arn=arn, state_machine_arn="arn:local",
                                   dlq_url=None, batch_size=10, parallelization=1), poll_interval=1.0)
    delivered: list[str] = []
    lock = threading.Lock()

    def run_execution(batch: list[dict[str, Any]]) -> tuple[bool, str]:
        with lock:
            delivered.extend(r["partitionKey"] for r in batch)
        return True, ""

    pipe.run_execution = run_execution  # type: ignore[method-assign]
    pipe.start()
    try:
        start = time.monotonic()
        assert _wait(lambda: pipe.quiet_since(start))  # an empty stream is quiet
        kinesis.put_record(StreamName="answers", Data=b"x", PartitionKey="session-1")
        asked = time.monotonic()
        # the reader sleeps a second after its first empty read: nothing is in flight yet (the
        # record waits in the stream), but it is not delivered
        assert pipe.idle and not delivered
        assert not pipe.quiet_since(asked)
        assert _wait(lambda: pipe.quiet_since(asked))
        assert delivered == ["session-1"]
    finally:
        pipe.stop()


def test_table_stream_poller_is_quiet_only_once_writes_before_the_question_are_delivered(emulator: None) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    table = ddb.create_table(
        TableName="state", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    stream_arn = table["TableDescription"]["LatestStreamArn"]
    poller = StreamPoller(StreamMapping(function_name="ship", stream_arn=stream_arn), poll_interval=0.01)
    shipped: list[str] = []
    first_read_slow = threading.Event()

    def invoke(batch: list[dict[str, Any]]) -> bool:
        first_read_slow.wait(5)  # a delivery that takes a while, as under load
        shipped.extend(r["dynamodb"]["NewImage"]["pk"]["S"] for r in batch)
        return True

    poller._invoke = invoke  # type: ignore[method-assign]
    poller.start()
    try:
        start = time.monotonic()
        assert _wait(lambda: poller.quiet_since(start))
        ddb.put_item(TableName="state", Item={"pk": {"S": "session-1"}})
        asked = time.monotonic()
        assert not poller.quiet_since(asked)
        time.sleep(0.3)  # the poller has read the record and is delivering it
        assert not poller.quiet_since(asked) and not shipped
        first_read_slow.set()
        assert _wait(lambda: poller.quiet_since(asked))
        assert shipped == ["session-1"]
    finally:
        first_read_slow.set()
        poller.stop()
