"""What both stream pollers of the local runtime share (the Pipe's Kinesis poller,
:mod:`.pipe`, and the Lambda event source mappings on table streams, :mod:`.event_sources`):
per shard a reader thread, supervised loops, the idle back-off, the question "is everything
written before this moment delivered?", thread-safe stats and per-thread AWS clients. Only the
delivery differs: a subclass reads its shards and hands each batch on its own way.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from .journal import Checkpoints
from .template import REGION

MAX_IDLE_S = 0.25  # the longest wait between two reads of an empty shard


@dataclass
class PollerStats:
    """Counters every poller keeps (a subclass's stats add their own)."""

    batches: int = 0
    records: int = 0
    loop_errors: int = 0  # unexpected exceptions caught by the supervised loops
    last_error: str | None = None
    errors: list[str] = field(default_factory=list)


class ShardPoller:
    """Threads that read a stream's shards, in order, until ``stop()``."""

    kind = "poller"  # how log lines name it

    def __init__(self, stats: PollerStats, poll_interval: float, checkpoints: Checkpoints | None) -> None:
        # where each shard's reading resumes after a restart (kept in the data folder, if any)
        self.checkpoints = checkpoints or Checkpoints(None)
        self.poll_interval = poll_interval
        self.stats = stats
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._pending = 0  # records read and not yet delivered
        self._clients = threading.local()
        # per shard: when the latest read that found nothing new started (None after a read that
        # found records, until the shard is read empty again); see quiet_since
        self._empty_read_started: dict[str, float | None] = {}

    # ------------------------------------------------------------------ what a subclass gives

    def shards(self) -> list[str]:
        """The stream's shard ids."""
        raise NotImplementedError

    def start_shard(self, shard_id: str) -> None:
        """Start the threads that read and deliver one shard (:meth:`spawn`, :meth:`poll`)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the shared machinery

    @property
    def idle(self) -> bool:
        """Nothing read and not yet delivered (records may still wait in the stream)."""
        return self._pending == 0

    def quiet_since(self, moment: float) -> bool:
        """Every record written before ``moment`` (``time.monotonic()``) is delivered: nothing is
        in flight and every shard has since been read and found empty. (Nothing in flight alone
        is not enough: a record written just before may be in a read that has not returned yet.)"""
        with self._lock:
            started = list(self._empty_read_started.values())
            return self._pending == 0 and bool(started) and all(s is not None and s >= moment for s in started)

    def start(self) -> None:
        for shard_id in self.shards():
            self._empty_read_started[shard_id] = None
            self.start_shard(shard_id)

    def spawn(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=name)
        thread.start()
        self._threads.append(thread)

    def abandon(self) -> None:
        """Tell the threads to stop, and wait for nothing (a stack that dies)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def supervised(self, name: str, step: Callable[[], bool]) -> None:
        """Run ``step`` until it returns False or the poller stops; an unexpected exception is
        logged, counted and followed by the next step, never the end of the loop."""
        while not self._stop.is_set():
            try:
                if not step():
                    return
            except Exception as exc:
                self.log_error(name, exc)
                self._stop.wait(0.2)

    def poll(self, shard_id: str, read: Callable[[], list[Any] | None], handle: Callable[[list[Any]], None],
             ready: Callable[[], bool] = lambda: True) -> None:
        """The reader loop of one shard, supervised: when ``ready()``, ``read()`` the next
        records and ``handle`` them; an empty shard is read less and less often (every call
        costs CPU the functions need), the first record resets the interval. ``read()``
        returning None read nothing (try again); ``ready()`` returning False ends the loop."""
        idle = [self.poll_interval]

        def step() -> bool:
            if not ready():
                return False
            started = time.monotonic()
            records = read()
            if records is None:
                return True
            with self._lock:
                self._empty_read_started[shard_id] = None if records else started
            if not records:
                self._stop.wait(idle[0])
                idle[0] = min(idle[0] * 2, MAX_IDLE_S)
                return True
            idle[0] = self.poll_interval
            handle(records)
            return True

        self.supervised(f"{shard_id} reader", step)

    def pending(self, change: int) -> None:
        with self._lock:
            self._pending += change

    def log_error(self, name: str, exc: Exception) -> None:
        self.count(loop_errors=1)
        with self._lock:
            self.stats.last_error = f"{name}: {type(exc).__name__}: {exc}"
        print(f"[irtcat] {self.kind} {name}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
              file=sys.stderr)

    def failed(self, error: str) -> None:
        """Note a failed delivery (the last error, and the list of them)."""
        with self._lock:
            self.stats.last_error = error
            self.stats.errors.append(error)

    def count(self, **increments: float) -> None:
        """Add to the stats (threads of their own count at once)."""
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    def client(self, service: str, **config: Any) -> Any:
        """This thread's boto3 client of ``service`` (clients are not shared between threads)."""
        key = f"{service}:{sorted(config.items())}"
        cache: dict[str, Any] = self._clients.__dict__
        if key not in cache:
            cache[key] = boto3.client(service, region_name=REGION, config=Config(**config) if config else None)
        return cache[key]
