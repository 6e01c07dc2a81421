"""The machinery both stream pollers share (emulator/shard_poller.py), tested once on an
in-memory stream: supervision, the idle back-off, quiet_since and the stats."""

from __future__ import annotations

import threading
import time
from typing import Any

from irtcat.emulator.shard_poller import MAX_IDLE_S, PollerStats, ShardPoller


class ListPoller(ShardPoller):
    """Two shards of records in lists; the handler fails on a record named "boom" once."""

    def __init__(self) -> None:
        super().__init__(PollerStats(), poll_interval=0.01, checkpoints=None)
        self.streams: dict[str, list[Any]] = {"a": [], "b": []}
        self.delivered: list[Any] = []
        self.reads: dict[str, list[float]] = {"a": [], "b": []}
        self.failed_once = False
        self.guard = threading.Lock()

    def shards(self) -> list[str]:
        return list(self.streams)

    def start_shard(self, shard_id: str) -> None:
        def read() -> list[Any] | None:
            self.reads[shard_id].append(time.monotonic())
            with self.guard:
                records, self.streams[shard_id][:] = list(self.streams[shard_id]), []
            return records

        def handle(records: list[Any]) -> None:
            if "boom" in records and not self.failed_once:
                self.failed_once = True
                with self.guard:  # the batch is read again after the failure
                    self.streams[shard_id][:0] = records
                raise RuntimeError("boom")
            self.delivered.extend(records)
            self.count(batches=1, records=len(records))

        self.spawn(self.poll, (shard_id, read, handle), f"list-{shard_id}")


def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_a_failing_batch_is_logged_counted_and_delivered_on_the_next_try() -> None:
    poller = ListPoller()
    poller.start()
    try:
        poller.streams["a"].extend(["x", "boom", "y"])
        _until(lambda: len(poller.delivered) == 3)
        assert poller.stats.loop_errors == 1 and "boom" in str(poller.stats.last_error)
        assert poller.stats.records == 3 and poller.delivered == ["x", "boom", "y"]
    finally:
        poller.stop()


def test_an_empty_shard_is_read_less_and_less_often_and_quiet_means_delivered() -> None:
    poller = ListPoller()
    asked = time.monotonic()
    assert not poller.quiet_since(asked)  # not started: nothing is known
    poller.start()
    try:
        _until(lambda: poller.quiet_since(asked))
        time.sleep(1.0)
        gaps = [b - a for a, b in zip(poller.reads["b"], poller.reads["b"][1:], strict=False)]
        assert gaps[0] < 0.05 and max(gaps) <= MAX_IDLE_S + 0.1 and gaps[-1] >= MAX_IDLE_S * 0.8
        poller.streams["b"].append("z")
        written = time.monotonic()  # z is in the stream: quiet since now means z is delivered
        _until(lambda: poller.quiet_since(written))
        assert poller.delivered == ["z"]
    finally:
        poller.stop()
