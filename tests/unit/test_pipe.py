"""The Pipe stand-in's lanes: ParallelizationFactor runs batches of one shard side by side while
each partition key's records stay in order (on in-process moto Kinesis)."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from irtcat.emulator.pipe import PipePoller, PipeSettings

KEYS = [f"session-{k}" for k in range(8)]


def _run_pipe(parallelization: int, records_per_key: int = 12) -> tuple[list[list[dict[str, Any]]], int]:
    """Publish interleaved records of 8 keys on one shard; return the batches the Pipe delivered
    (in the order they started) and the most executions seen in flight at once."""
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    kinesis.create_stream(StreamName="answers", ShardCount=1)
    arn = kinesis.describe_stream(StreamName="answers")["StreamDescription"]["StreamARN"]
    for n in range(records_per_key):
        for key in KEYS:
            kinesis.put_record(StreamName="answers", Data=f"{key}:{n}".encode(), PartitionKey=key)
    settings = PipeSettings(stream_name="answers", stream_arn=arn, state_machine_arn="arn:local", dlq_url=None,
                            batch_size=4, parallelization=parallelization)
    pipe = PipePoller(settings)
    batches: list[list[dict[str, Any]]] = []
    lock = threading.Lock()
    running = [0, 0]  # now, most

    def run_execution(batch: list[dict[str, Any]]) -> tuple[bool, str]:
        with lock:
            batches.append(batch)
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.05)  # an execution takes a while: lanes overlap if they can
        with lock:
            running[0] -= 1
        return True, ""

    pipe.run_execution = run_execution  # type: ignore[method-assign]
    pipe.start()
    deadline = time.monotonic() + 30
    while sum(map(len, batches)) < len(KEYS) * records_per_key and time.monotonic() < deadline:
        time.sleep(0.05)
    while not pipe.idle and time.monotonic() < deadline:
        time.sleep(0.05)
    pipe.stop()
    return batches, running[1]


@pytest.mark.parametrize("parallelization", [1, 3])
def test_lanes_keep_each_key_in_order_and_deliver_every_record_once(moto_kinesis: None, parallelization: int) -> None:
    import base64

    batches, most_in_flight = _run_pipe(parallelization)
    delivered = [base64.b64decode(r["data"]).decode() for batch in batches for r in batch]
    assert sorted(delivered) == sorted(f"{key}:{n}" for key in KEYS for n in range(12))  # each once
    for key in KEYS:
        mine = [int(d.split(":")[1]) for d in delivered if d.startswith(f"{key}:")]
        assert mine == sorted(mine), f"{key} out of order: {mine}"
    assert all(1 <= len(b) <= 4 for b in batches)
    lanes = PipeSettings("s", "a", "m", None, parallelization=parallelization)
    for batch in batches:  # a batch never mixes lanes
        assert len({lanes.lane_of(r["partitionKey"]) for r in batch}) == 1
    if parallelization == 1:
        assert most_in_flight == 1
    else:
        assert most_in_flight > 1


def test_parallelization_factor_is_read_from_the_template_and_bounded() -> None:
    props = {"Source": "arn:stream", "Target": "arn:sm",
             "SourceParameters": {"KinesisStreamParameters": {"ParallelizationFactor": "3", "BatchSize": "5"}}}
    settings = PipeSettings.from_template(props, "answers", None)
    assert settings.parallelization == 3 and settings.batch_size == 5
    props["SourceParameters"]["KinesisStreamParameters"]["ParallelizationFactor"] = "40"
    assert PipeSettings.from_template(props, "answers", None).parallelization == 10
    lanes = {settings.lane_of(key) for key in KEYS}
    assert lanes <= {0, 1, 2} and len(lanes) > 1
    assert all(settings.lane_of(key) == settings.lane_of(key) for key in KEYS)


@pytest.fixture()
def moto_kinesis(fake_aws: None) -> Any:
    from moto import mock_aws

    with mock_aws():
        yield
