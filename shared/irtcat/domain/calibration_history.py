"""What the managed calibration job reads of the answer history: the objects of the partitions
it covers, the applied answers to one bank's items, and their response times."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np

from .bank import ItemBank
from .history import HistoryRecord
from .ports import ObjectStore

# an item's mean log response time is written once this many of its answers are timed
MIN_TIMED_ANSWERS = 30


def history_keys(history: ObjectStore, since: datetime | None) -> list[str]:
    """The history objects of the partitions on or after ``since``'s day (all when None)."""
    keys = history.list("history/")
    if since is None:
        return keys
    day = f"dt={since.astimezone(UTC):%Y-%m-%d}"
    return [k for k in keys if _partition(k) >= day]


def _partition(key: str) -> str:
    return next((part for part in key.split("/") if part.startswith("dt=")), "")


def applied_answers(history: ObjectStore, keys: Iterable[str], bank_id: str,
                    since: datetime | None) -> Iterator[HistoryRecord]:
    """Applied answers to ``bank_id``'s items processed after ``since``."""
    for key in keys:
        for line in history.get(key).splitlines():
            if not line.strip():
                continue
            rec = HistoryRecord.model_validate_json(line)
            if (rec.record_type == "answer" and rec.outcome == "applied" and rec.bank_id == bank_id
                    and rec.item_id and rec.session_id and rec.response is not None
                    and (since is None or rec.processed_at > since)):
                yield rec


class ResponseTimes:
    """Per item, the sum of log seconds over its timed answers and their count (the answer's
    bounded time, else the tablet's claim for answers recorded before times were bounded);
    written by :func:`prepare` beside the shards and applied to the candidate bank as each
    item's ``mean_log_seconds`` (the rapid-guess thresholds of domain/effort.py)."""

    def __init__(self, sums: dict[str, list[float]] | None = None) -> None:
        self.sums: dict[str, list[float]] = sums or {}

    def add(self, rec: HistoryRecord) -> None:
        seconds = rec.seconds if rec.seconds is not None else (
            rec.response_time_ms / 1000 if rec.response_time_ms else None)
        if seconds is not None and seconds > 0 and rec.item_id:
            entry = self.sums.setdefault(rec.item_id, [0.0, 0.0])
            entry[0] += float(np.log(seconds))
            entry[1] += 1

    def save(self, work: ObjectStore, prefix: str) -> None:
        work.put(f"{prefix}times.json", json.dumps(self.sums).encode())

    @classmethod
    def load(cls, work: ObjectStore, prefix: str) -> ResponseTimes:
        try:
            raw: Any = json.loads(work.get(f"{prefix}times.json"))
        except KeyError:
            return cls()
        return cls(raw)

    def applied_to(self, bank: ItemBank) -> ItemBank:
        """``bank`` with ``mean_log_seconds`` of every item with enough timed answers."""
        items = []
        for it in bank.items:
            total, n = self.sums.get(it.item_id, (0.0, 0.0))
            items.append(it.model_copy(update={"mean_log_seconds": round(total / n, 4)})
                         if n >= MIN_TIMED_ANSWERS else it)
        return bank.model_copy(update={"items": items})
