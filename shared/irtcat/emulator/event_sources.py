"""Lambda event source mappings on DynamoDB streams: moto's would invoke its own (Docker) Lambda.

Per shard, in order, a poller reads the table's stream and invokes the function with batches
shaped as Lambda delivers them (``{"Records": [...]}``), after the mapping's filter. A failed
batch is retried (with ``BisectBatchOnFunctionError``, split in halves) until the function takes
it, as ``MaximumRetryAttempts: -1`` asks: a stream record is never skipped. The loops are
supervised as the Pipe's are.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from .journal import Checkpoints
from .template import REGION


@dataclass(frozen=True)
class StreamMapping:
    """An ``AWS::Lambda::EventSourceMapping`` whose source is a DynamoDB stream."""

    function_name: str
    stream_arn: str
    batch_size: int = 100
    window_s: float = 0.0
    bisect: bool = False
    filters: tuple[Any, ...] = ()

    @classmethod
    def from_template(cls, props: dict[str, Any]) -> StreamMapping:
        patterns = tuple(json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", []))
        return cls(function_name=str(props["FunctionName"]), stream_arn=str(props["EventSourceArn"]),
                   batch_size=int(props.get("BatchSize", 100)),
                   window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                   bisect=bool(props.get("BisectBatchOnFunctionError", False)), filters=patterns)

    def wants(self, record: dict[str, Any]) -> bool:
        """Whether a record passes the mapping's filters (any of them; none: every record)."""
        return not self.filters or any(matches(p, record) for p in self.filters)


def matches(pattern: Any, value: Any) -> bool:
    """An event filter pattern against a record: objects match key by key, and a list of
    alternatives matches a value equal to one of them or an ``{"exists": bool}`` that holds
    (the part of Lambda's filter syntax the template uses)."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, sub in pattern.items():
            if isinstance(sub, list) and any(isinstance(a, dict) and "exists" in a for a in sub):
                exists = key in value
                if not any(isinstance(a, dict) and a.get("exists") == exists for a in sub):
                    return False
                continue
            if key not in value or not matches(sub, value[key]):
                return False
        return True
    if isinstance(pattern, list):
        return any(matches(alternative, value) for alternative in pattern)
    return bool(pattern == value)


@dataclass
class StreamStats:
    batches: int = 0
    records: int = 0
    filtered_out: int = 0
    failed_invocations: int = 0
    loop_errors: int = 0
    last_error: str | None = None
    errors: list[str] = field(default_factory=list)


class StreamPoller:
    """A reader thread per shard of the mapping's stream; ``stop()`` ends them."""

    def __init__(self, mapping: StreamMapping, poll_interval: float = 0.05,
                 checkpoints: Checkpoints | None = None) -> None:
        self.mapping = mapping
        # where each shard's reading resumes after a restart (kept in the data folder, if any)
        self.checkpoints = checkpoints or Checkpoints(None)
        self.poll_interval = poll_interval
        self.stats = StreamStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # per shard: when the latest read that found no new record started (None after a read
        # that found records, until they are delivered and the shard is read empty again)
        self._empty_read_started: dict[str, float | None] = {}

    def quiet_since(self, moment: float) -> bool:
        """Every stream record written before ``moment`` (``time.monotonic()``) is delivered:
        every shard has since been read and found to hold nothing new."""
        with self._lock:
            started = list(self._empty_read_started.values())
        return bool(started) and all(s is not None and s >= moment for s in started)

    def start(self) -> None:
        streams = boto3.client("dynamodbstreams", region_name=REGION)
        shards = streams.describe_stream(StreamArn=self.mapping.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            self._empty_read_started[shard["ShardId"]] = None
            thread = threading.Thread(target=self._read, args=(shard["ShardId"],), daemon=True,
                                      name=f"stream-{self.mapping.function_name[-24:]}")
            thread.start()
            self._threads.append(thread)

    def abandon(self) -> None:
        """Tell the threads to stop, and wait for nothing (a stack that dies)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _read(self, shard_id: str) -> None:
        streams = boto3.client("dynamodbstreams", region_name=REGION)
        # the sequence number of the last record delivered
        last = self.checkpoints.get(self.mapping.function_name, shard_id)
        idle = self.poll_interval
        while not self._stop.is_set():
            try:
                started = time.monotonic()
                # a fresh iterator for every read, after the last record delivered: moto's
                # iterators hold the shard object, which a failed TransactWriteItems replaces
                # with a copy when it rolls the table back (docs/moto.md)
                where = ({"ShardIteratorType": "TRIM_HORIZON"} if last is None else
                         {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last})
                iterator = streams.get_shard_iterator(StreamArn=self.mapping.stream_arn, ShardId=shard_id,
                                                      **where)["ShardIterator"]
                records = streams.get_records(ShardIterator=iterator, Limit=self.mapping.batch_size).get("Records", [])
                with self._lock:
                    self._empty_read_started[shard_id] = None if records else started
                if not records:
                    self._stop.wait(idle)
                    idle = min(idle * 2, 0.25)
                    continue
                idle = self.poll_interval
                wanted = [r for r in records if self.mapping.wants(r)]
                self._count(filtered_out=len(records) - len(wanted), records=len(wanted))
                if wanted:
                    self._deliver(wanted)
                if not self._stop.is_set():  # moved on only once the batch is delivered
                    last = str(records[-1]["dynamodb"]["SequenceNumber"])
                    self.checkpoints.set(self.mapping.function_name, shard_id, last)
            except Exception as exc:
                self._count(loop_errors=1)
                with self._lock:
                    self.stats.last_error = f"{shard_id}: {type(exc).__name__}: {exc}"
                print(f"[irtcat] stream poller {shard_id}: {type(exc).__name__}: {exc}\n"
                      f"{traceback.format_exc(limit=5)}", file=sys.stderr)
                self._stop.wait(0.2)

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Invoke until the function takes the batch (halves when bisecting), or the poller stops."""
        for attempt in range(1_000_000):
            if self._invoke(batch):
                self._count(batches=1)
                return
            if self.mapping.bisect and len(batch) > 1:
                mid = len(batch) // 2
                self._deliver(batch[:mid])
                self._deliver(batch[mid:])
                return
            if self._stop.wait(min(5.0, 0.1 * 2**attempt)):
                return

    def _invoke(self, batch: list[dict[str, Any]]) -> bool:
        try:
            reply = self._lambda().invoke(FunctionName=self.mapping.function_name,
                                          Payload=json.dumps({"Records": batch}, default=str))
            ok = not reply.get("FunctionError")
            error = "" if ok else reply["Payload"].read().decode("utf-8", "replace")[:1000]
        except Exception as exc:  # the emulator unreachable: retried like a failed invocation
            ok, error = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            self._count(failed_invocations=1)
            with self._lock:
                self.stats.last_error = error
                self.stats.errors.append(error)
        return ok

    def _lambda(self) -> Any:
        local = getattr(self, "_client", None)
        if local is None:
            local = self._client = boto3.client("lambda", region_name=REGION, config=Config(read_timeout=330))
        return local

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)
