"""Lambda event source mappings on DynamoDB streams: moto's would invoke its own (Docker) Lambda.

Per shard, in order, a poller reads the table's stream and invokes the function with batches
shaped as Lambda delivers them (``{"Records": [...]}``), after the mapping's filter. A failed
batch is retried (with ``BisectBatchOnFunctionError``, split in halves) until the function takes
it, as ``MaximumRetryAttempts: -1`` asks: a stream record is never skipped. The reading,
supervision and back-off are the Pipe's (:mod:`.shard_poller`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .journal import Checkpoints
from .shard_poller import PollerStats, ShardPoller


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
class StreamStats(PollerStats):
    filtered_out: int = 0
    failed_invocations: int = 0


class StreamPoller(ShardPoller):
    """A reader thread per shard of the mapping's stream, delivering to its function."""

    kind = "stream poller"

    def __init__(self, mapping: StreamMapping, poll_interval: float = 0.05,
                 checkpoints: Checkpoints | None = None) -> None:
        super().__init__(StreamStats(), poll_interval, checkpoints)
        self.mapping = mapping
        self.stats: StreamStats

    def shards(self) -> list[str]:
        description = self.client("dynamodbstreams").describe_stream(StreamArn=self.mapping.stream_arn)
        return [shard["ShardId"] for shard in description["StreamDescription"]["Shards"]]

    def start_shard(self, shard_id: str) -> None:
        self.spawn(self._read, (shard_id,), f"stream-{self.mapping.function_name[-24:]}")

    def _read(self, shard_id: str) -> None:
        streams = self.client("dynamodbstreams")
        # the sequence number of the last record delivered
        last = [self.checkpoints.get(self.mapping.function_name, shard_id)]

        def read() -> list[Any]:
            # a fresh iterator for every read, after the last record delivered: moto's
            # iterators hold the shard object, which a failed TransactWriteItems replaces
            # with a copy when it rolls the table back (docs/moto.md)
            where = ({"ShardIteratorType": "TRIM_HORIZON"} if last[0] is None else
                     {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last[0]})
            iterator = streams.get_shard_iterator(StreamArn=self.mapping.stream_arn, ShardId=shard_id,
                                                  **where)["ShardIterator"]
            records: list[Any] = streams.get_records(ShardIterator=iterator,
                                                     Limit=self.mapping.batch_size).get("Records", [])
            return records

        def handle(records: list[Any]) -> None:
            wanted = [r for r in records if self.mapping.wants(r)]
            self.count(filtered_out=len(records) - len(wanted), records=len(wanted))
            if wanted:
                self._deliver(wanted)
            if not self._stop.is_set():  # moved on only once the batch is delivered
                delivered = str(records[-1]["dynamodb"]["SequenceNumber"])
                last[0] = delivered
                self.checkpoints.set(self.mapping.function_name, shard_id, delivered)

        self.poll(shard_id, read, handle)

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Invoke until the function takes the batch (halves when bisecting), or the poller stops."""
        for attempt in range(1_000_000):
            if self._invoke(batch):
                self.count(batches=1)
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
            reply = self.client("lambda", read_timeout=330).invoke(
                FunctionName=self.mapping.function_name, Payload=json.dumps({"Records": batch}, default=str))
            ok = not reply.get("FunctionError")
            error = "" if ok else reply["Payload"].read().decode("utf-8", "replace")[:1000]
        except Exception as exc:  # the emulator unreachable: retried like a failed invocation
            ok, error = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            self.count(failed_invocations=1)
            self.failed(error)
        return ok
