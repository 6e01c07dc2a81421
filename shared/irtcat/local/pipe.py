"""The EventBridge Pipe stand-in: moto's Pipes never deliver.

Per shard, in order, it reads the stream and runs the target state machine with a batch shaped
as a Pipe's Kinesis batch, waiting for each execution to end before the next batch
(REQUEST_RESPONSE keeps a shard in order). A failed batch is retried up to
``MaximumRetryAttempts``; with ``AUTOMATIC_BISECT`` it is split in halves so that one bad
record cannot hold the others; a record that still fails, or is older than
``MaximumRecordAgeInSeconds``, goes to the dead-letter queue with the failure.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from .template import REGION


@dataclass(frozen=True)
class PipeSettings:
    """The Pipe's source and target parameters, read from the template."""

    stream_name: str
    stream_arn: str
    state_machine_arn: str
    dlq_url: str | None
    batch_size: int = 10
    max_retries: int = 5
    max_record_age_s: int = 3600
    bisect: bool = True

    @classmethod
    def from_template(cls, props: dict[str, Any], stream_name: str, dlq_url: str | None) -> PipeSettings:
        k = props.get("SourceParameters", {}).get("KinesisStreamParameters", {})
        return cls(
            stream_name=stream_name, stream_arn=props["Source"], state_machine_arn=props["Target"],
            dlq_url=dlq_url, batch_size=int(k.get("BatchSize", 10)),
            max_retries=int(k.get("MaximumRetryAttempts", 5)),
            max_record_age_s=int(k.get("MaximumRecordAgeInSeconds", 3600)),
            bisect=k.get("OnPartialBatchItemFailure") == "AUTOMATIC_BISECT",
        )


@dataclass
class PipeStats:
    batches: int = 0
    records: int = 0
    executions_succeeded: int = 0
    executions_failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    execution_seconds: float = 0.0
    last_error: str | None = None
    errors: list[str] = field(default_factory=list)


def pipe_record(rec: dict[str, Any], shard_id: str, settings: PipeSettings) -> dict[str, Any]:
    """A Kinesis record as a Pipe delivers it to its target."""
    arrival = rec["ApproximateArrivalTimestamp"]
    return {
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{rec['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/pipe",
        "awsRegion": REGION,
        "eventSourceARN": settings.stream_arn,
        "kinesisSchemaVersion": "1.0",
        "partitionKey": rec["PartitionKey"],
        "sequenceNumber": rec["SequenceNumber"],
        "data": base64.b64encode(rec["Data"]).decode(),
        "approximateArrivalTimestamp": arrival.timestamp() if isinstance(arrival, datetime) else arrival,
    }


class PipePoller:
    """One thread per shard; ``stop()`` ends them after the batch in flight."""

    def __init__(self, settings: PipeSettings, poll_interval: float = 0.02,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self.poll_interval = poll_interval
        self.on_batch = on_batch
        self.stats = PipeStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._inflight = 0
        self._clients = threading.local()

    @property
    def idle(self) -> bool:
        return self._inflight == 0

    def start(self) -> None:
        kinesis = boto3.client("kinesis", region_name=REGION)
        shards = kinesis.list_shards(StreamName=self.settings.stream_name)["Shards"]
        for shard in shards:
            t = threading.Thread(target=self._run, args=(shard["ShardId"],), daemon=True,
                                 name=f"pipe-{shard['ShardId']}")
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self, shard_id: str) -> None:
        kinesis = boto3.client("kinesis", region_name=REGION)
        iterator = kinesis.get_shard_iterator(
            StreamName=self.settings.stream_name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        idle = self.poll_interval
        while not self._stop.is_set():
            try:
                resp = kinesis.get_records(ShardIterator=iterator, Limit=self.settings.batch_size)
            except Exception as exc:
                self.stats.last_error = f"get_records: {exc}"
                time.sleep(0.2)
                continue
            iterator = resp["NextShardIterator"]
            records = resp["Records"]
            if not records:
                # an empty shard is polled less and less often (every API call costs CPU that
                # the executions need); the first record resets the interval
                self._stop.wait(idle)
                idle = min(idle * 2, 0.25)
                continue
            idle = self.poll_interval
            with self._lock:
                self._inflight += 1
            try:
                batch = [pipe_record(r, shard_id, self.settings) for r in records]
                self._deliver(batch)
                self.stats.batches += 1
                self.stats.records += len(batch)
                if self.on_batch:
                    self.on_batch(len(batch))
            finally:
                with self._lock:
                    self._inflight -= 1

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        now = time.time()
        fresh = [r for r in batch if now - r["approximateArrivalTimestamp"] <= self.settings.max_record_age_s]
        stale = [r for r in batch if r not in fresh]
        if stale:
            self._dead_letter(stale, "record older than MaximumRecordAgeInSeconds")
        if fresh:
            self._deliver_with_retries(fresh)

    def _deliver_with_retries(self, batch: list[dict[str, Any]]) -> None:
        error = ""
        for attempt in range(self.settings.max_retries + 1):
            ok, error = self.run_execution(batch)
            if ok:
                return
            self.stats.retried += 1
            time.sleep(min(2.0, 0.1 * 2**attempt))
            if self.settings.bisect and len(batch) > 1:
                mid = len(batch) // 2
                self._deliver_with_retries(batch[:mid])
                self._deliver_with_retries(batch[mid:])
                return
        self._dead_letter(batch, error)

    def run_execution(self, batch: list[dict[str, Any]]) -> tuple[bool, str]:
        """Run the state machine on a batch and wait for its end: StartSyncExecution, as a Pipe
        with a REQUEST_RESPONSE Express target does."""
        started = time.perf_counter()
        result = self._sfn().start_sync_execution(stateMachineArn=self.settings.state_machine_arn,
                                                  name=f"pipe-{uuid.uuid4()}", input=json.dumps(batch))
        self.stats.execution_seconds += time.perf_counter() - started
        if result["status"] == "SUCCEEDED":
            self.stats.executions_succeeded += 1
            return True, ""
        self.stats.executions_failed += 1
        error = f"{result.get('error', result['status'])}: {result.get('cause', '')}"[:2000]
        self.stats.last_error = error
        self.stats.errors.append(error)
        return False, error

    def _sfn(self) -> Any:
        local = self._clients
        if not hasattr(local, "sfn"):
            # StartSyncExecution's host prefix ("sync-") cannot be put on a loopback endpoint;
            # an Express execution may run for 5 minutes
            local.sfn = boto3.client("stepfunctions", region_name=REGION,
                                     config=Config(inject_host_prefix=False, read_timeout=330))
        return local.sfn

    def _dead_letter(self, batch: list[dict[str, Any]], reason: str) -> None:
        self.stats.dead_lettered += len(batch)
        if not self.settings.dlq_url:
            return
        sqs = boto3.client("sqs", region_name=REGION)
        body = json.dumps({
            "context": {"failure": reason[:1000], "pipeArn": "local-pipe",
                        "dead_lettered_at": datetime.now(UTC).isoformat()},
            "records": batch,
        })
        sqs.send_message(QueueUrl=self.settings.dlq_url, MessageBody=body)
