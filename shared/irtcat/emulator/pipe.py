"""The EventBridge Pipe stand-in: moto's Pipes never deliver.

Per shard, in order, it reads the stream and runs the target state machine with a batch shaped
as a Pipe's Kinesis batch, waiting for each execution to end before the next batch
(REQUEST_RESPONSE keeps a shard in order). With ``ParallelizationFactor`` N, a shard's records
are spread over N lanes by a hash of their partition key, and each lane runs its own batches
one at a time: records with the same partition key (one session's answers) stay in order, as
AWS promises for concurrent batches from one shard. A failed batch is retried up to
``MaximumRetryAttempts``; with ``AUTOMATIC_BISECT`` it is split in halves so that one bad
record cannot hold the others; a record that still fails, or is older than
``MaximumRecordAgeInSeconds``, goes to the dead-letter queue with the failure. An enrichment
function, when the Pipe has one, gets each batch first and hands the target what it returns
(nothing: the target is not run); its failure fails the batch like the target's.

Every loop is supervised (:mod:`.shard_poller`, shared with the table-stream pollers): an
unexpected exception is logged and counted (``PipeStats.loop_errors``), the batch in hand is
retried, and the loop goes on. A dead-letter
message that SQS would refuse for its size keeps each record's metadata and drops its data, as
a Pipe's dead-letter message for a stream source carries no data either.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .journal import Checkpoints
from .shard_poller import PollerStats, ShardPoller
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
    parallelization: int = 1  # concurrent batches per shard (ParallelizationFactor, 1-10)
    enrichment: str | None = None  # a Lambda function's ARN

    @classmethod
    def from_template(cls, props: dict[str, Any], stream_name: str, dlq_url: str | None) -> PipeSettings:
        k = props.get("SourceParameters", {}).get("KinesisStreamParameters", {})
        return cls(
            stream_name=stream_name, stream_arn=props["Source"], state_machine_arn=props["Target"],
            dlq_url=dlq_url, batch_size=int(k.get("BatchSize", 10)),
            max_retries=int(k.get("MaximumRetryAttempts", 5)),
            max_record_age_s=int(k.get("MaximumRecordAgeInSeconds", 3600)),
            bisect=k.get("OnPartialBatchItemFailure") == "AUTOMATIC_BISECT",
            parallelization=min(10, max(1, int(k.get("ParallelizationFactor", 1)))),
            enrichment=props.get("Enrichment"),
        )

    def lane_of(self, partition_key: str) -> int:
        """The lane of a record: a stable hash of its partition key, so that one key's records
        always share a lane."""
        digest = hashlib.md5(partition_key.encode(), usedforsecurity=False).digest()
        return int.from_bytes(digest[:8], "big") % self.parallelization


@dataclass
class PipeStats(PollerStats):
    executions_succeeded: int = 0
    executions_failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    execution_seconds: float = 0.0
    enriched_out: int = 0  # records the enrichment did not pass on


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


class _Progress:
    """How far a shard is delivered when lanes finish batches out of order: the highest sequence
    number up to which every record read is delivered (or dead-lettered)."""

    def __init__(self, shard_id: str, checkpoints: Checkpoints, source: str) -> None:
        self.shard_id, self.checkpoints, self.source = shard_id, checkpoints, source
        self._order: deque[str] = deque()  # sequence numbers read, in order
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def read(self, sequence_numbers: list[str]) -> None:
        with self._lock:
            self._order.extend(sequence_numbers)

    def delivered(self, sequence_numbers: list[str]) -> None:
        with self._lock:
            self._done.update(sequence_numbers)
            last = None
            while self._order and self._order[0] in self._done:
                last = self._order.popleft()
                self._done.discard(last)
            if last is not None:
                self.checkpoints.set(self.source, self.shard_id, last)


class _Lanes:
    """The lanes of one shard: the records waiting for each, and which lanes are running a batch."""

    def __init__(self, n: int, progress: _Progress) -> None:
        self.progress = progress
        self._waiting: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        self._busy = [False] * n
        self._cond = threading.Condition()

    def wait_for_free(self, stop: threading.Event, size: int) -> bool:
        """Block until some lane has nothing running and nothing waiting, while no more than a
        batch per lane waits in all (records for busy lanes wait in the stream); False once
        stopped."""
        with self._cond:
            while not stop.is_set():
                free = any(not busy and not waiting for busy, waiting in zip(self._busy, self._waiting, strict=True))
                if free and sum(map(len, self._waiting)) < size * len(self._waiting):
                    return True
                self._cond.wait(0.2)
        return False

    def put(self, chunks: dict[int, list[dict[str, Any]]]) -> None:
        with self._cond:
            for n, records in chunks.items():
                self._waiting[n].extend(records)
            self._cond.notify_all()

    def take(self, n: int, size: int, stop: threading.Event) -> list[dict[str, Any]]:
        """The next batch of lane ``n`` (at most ``size`` records, in order); [] on a timeout."""
        with self._cond:
            if not self._waiting[n] and not stop.is_set():
                self._cond.wait(0.2)
            batch, self._waiting[n] = self._waiting[n][:size], self._waiting[n][size:]
            self._busy[n] = bool(batch)
            return batch

    def done(self, n: int) -> None:
        with self._cond:
            self._busy[n] = False
            self._cond.notify_all()


class PipePoller(ShardPoller):
    """Per shard, a reader thread and ``parallelization`` lane threads; ``stop()`` ends them
    after the batches in flight."""

    kind = "pipe"

    def __init__(self, settings: PipeSettings, poll_interval: float = 0.02,
                 on_batch: Callable[[int], None] | None = None, checkpoints: Checkpoints | None = None) -> None:
        super().__init__(PipeStats(), poll_interval, checkpoints)
        self.settings = settings
        self.on_batch = on_batch
        self.stats: PipeStats

    def shards(self) -> list[str]:
        listing = self.client("kinesis").list_shards(StreamName=self.settings.stream_name)
        return [shard["ShardId"] for shard in listing["Shards"]]

    def start_shard(self, shard_id: str) -> None:
        lanes = _Lanes(self.settings.parallelization, _Progress(shard_id, self.checkpoints, "pipe"))
        for n in range(self.settings.parallelization):
            self.spawn(self._run_lane, (lanes, n), f"pipe-{shard_id}-lane{n}")
        self.spawn(self._read, (shard_id, lanes), f"pipe-{shard_id}")

    def _read(self, shard_id: str, lanes: _Lanes) -> None:
        kinesis = self.client("kinesis")
        after = self.checkpoints.get("pipe", shard_id)
        where = ({"ShardIteratorType": "TRIM_HORIZON"} if after is None else
                 {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after})
        iterator = [kinesis.get_shard_iterator(StreamName=self.settings.stream_name, ShardId=shard_id,
                                               **where)["ShardIterator"]]

        def read() -> list[Any] | None:
            try:
                resp = kinesis.get_records(ShardIterator=iterator[0], Limit=self.settings.batch_size)
            except Exception as exc:  # the emulator busy or restarting: read again
                self.stats.last_error = f"get_records: {exc}"
                time.sleep(0.2)
                return None
            iterator[0] = resp["NextShardIterator"]
            records: list[Any] = resp["Records"]
            return records

        def handle(records: list[Any]) -> None:
            chunks: dict[int, list[dict[str, Any]]] = {}
            for r in records:
                record = pipe_record(r, shard_id, self.settings)
                chunks.setdefault(self.settings.lane_of(record["partitionKey"]), []).append(record)
            self.pending(len(records))
            lanes.progress.read([r["SequenceNumber"] for r in records])
            lanes.put(chunks)

        # read only when a lane is free: records wait in the stream, not here, and a free lane
        # gets everything that arrived meanwhile as one batch
        self.poll(shard_id, read, handle, ready=lambda: lanes.wait_for_free(self._stop, self.settings.batch_size))

    def _run_lane(self, lanes: _Lanes, n: int) -> None:
        def step() -> bool:
            batch = lanes.take(n, self.settings.batch_size, self._stop)
            if not batch:
                return True
            delivered = False
            try:
                while True:  # a batch in hand is delivered or dead-lettered, never dropped
                    try:
                        self._deliver(batch)
                        delivered = True
                        break
                    except Exception as exc:
                        self.log_error(f"lane {n}", exc)
                        if self._stop.wait(0.5):
                            return False
                self.count(batches=1, records=len(batch))
                if self.on_batch:
                    self.on_batch(len(batch))
            finally:
                self.pending(-len(batch))
                if delivered:
                    lanes.progress.delivered([r["sequenceNumber"] for r in batch])
                lanes.done(n)
            return True

        self.supervised(f"lane {n}", step)

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
            try:
                ok, error = self._enrich_and_run(batch)
            except Exception as exc:  # the emulator unreachable, a reply cut short: retried
                self.count(loop_errors=1)
                ok, error = False, f"{type(exc).__name__}: {exc}"
            if ok:
                return
            self.count(retried=1)
            time.sleep(min(2.0, 0.1 * 2**attempt))
            if self.settings.bisect and len(batch) > 1:
                mid = len(batch) // 2
                self._deliver_with_retries(batch[:mid])
                self._deliver_with_retries(batch[mid:])
                return
        self._dead_letter(batch, error)

    def _enrich_and_run(self, batch: list[dict[str, Any]]) -> tuple[bool, str]:
        """The enrichment (if any) on the batch, then the target on what it returned."""
        if self.settings.enrichment:
            reply = self.client("lambda", read_timeout=330).invoke(FunctionName=self.settings.enrichment,
                                                                   Payload=json.dumps(batch))
            payload = json.loads(reply["Payload"].read() or b"null")
            if reply.get("FunctionError") or not isinstance(payload, list):
                error = f"enrichment failed: {json.dumps(payload)[:1000]}"
                with self._lock:
                    self.stats.last_error = error
                return False, error
            self.count(enriched_out=len(batch) - len(payload))
            batch = payload
            if not batch:
                return True, ""
        return self.run_execution(batch)

    def run_execution(self, batch: list[dict[str, Any]]) -> tuple[bool, str]:
        """Run the state machine on a batch and wait for its end: StartSyncExecution, as a Pipe
        with a REQUEST_RESPONSE Express target does."""
        started = time.perf_counter()
        # StartSyncExecution's host prefix ("sync-") cannot be put on a loopback endpoint; an
        # Express execution may run for 5 minutes
        sfn = self.client("stepfunctions", inject_host_prefix=False, read_timeout=330)
        result = sfn.start_sync_execution(stateMachineArn=self.settings.state_machine_arn,
                                                  name=f"pipe-{uuid.uuid4()}", input=json.dumps(batch))
        self.count(execution_seconds=time.perf_counter() - started)
        if result["status"] == "SUCCEEDED":
            self.count(executions_succeeded=1)
            return True, ""
        self.count(executions_failed=1)
        error = f"{result.get('error', result['status'])}: {result.get('cause', '')}"[:2000]
        self.failed(error)
        return False, error

    def _dead_letter(self, batch: list[dict[str, Any]], reason: str) -> None:
        """Park a batch in the dead-letter queue, retrying until SQS takes it (a Pipe holds its
        shard until then)."""
        self.count(dead_lettered=len(batch))
        if not self.settings.dlq_url:
            return
        body = dead_letter_body(batch, reason)
        for attempt in range(1_000_000):
            try:
                self.client("sqs").send_message(QueueUrl=self.settings.dlq_url, MessageBody=body)
                return
            except Exception as exc:
                self.count(loop_errors=1)
                with self._lock:
                    self.stats.last_error = f"dead-letter: {type(exc).__name__}: {exc}"
                if self._stop.wait(min(5.0, 0.2 * 2**attempt)):
                    return


# SQS's largest message (1 MiB), less room for the attributes
MAX_DEAD_LETTER_BYTES = 1_000_000


def dead_letter_body(batch: list[dict[str, Any]], reason: str) -> str:
    """A dead-letter message: the failure and the records; when that is larger than SQS takes,
    each record keeps its metadata (shard, sequence number, key, size and digest of its data),
    and its data is dropped, like a Pipe's dead-letter message for a stream source."""
    context = {"failure": reason[:1000], "pipeArn": "local-pipe", "dead_lettered_at": datetime.now(UTC).isoformat()}
    body = json.dumps({"context": context, "records": batch})
    if len(body.encode()) <= MAX_DEAD_LETTER_BYTES:
        return body
    slim = []
    for record in batch:
        data = str(record.get("data") or "")
        slim.append({**{k: v for k, v in record.items() if k != "data"}, "data": None,
                     "dataBytes": len(data) * 3 // 4, "dataSha256": hashlib.sha256(data.encode()).hexdigest()})
    context["dataDropped"] = "the batch was larger than an SQS message: the records' data stayed in the stream"
    return json.dumps({"context": context, "records": slim})
