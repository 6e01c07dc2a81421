"""The history record that Firehose lands in S3 (one per processed answer, one per finished
session). Flat on purpose: it is the schema of the Athena table."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict

from .base import Message

HISTORY_SCHEMA_VERSION = 1
Outcome = Literal["applied", "duplicate", "rejected", "finished"]


class HistoryRecord(Message):
    """``record_type`` answer: outcome applied|duplicate|rejected (with ``reason``);
    ``record_type`` session: outcome finished, with the final theta, SE, length, stop reason;
    ``record_type`` groups: outcome finished, the session's reported group variables (shipped to
    the history bucket's ``groups/`` prefix, never beside the others)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = HISTORY_SCHEMA_VERSION
    record_type: Literal["answer", "session", "groups"]
    outcome: Outcome
    reason: str | None = None
    processed_at: datetime
    event_id: str | None = None
    session_id: str | None = None
    student_id: str | None = None
    test_id: str | None = None
    bank_id: str | None = None
    bank_version: int | None = None
    item_id: str | None = None
    seq: int | None = None
    choice: str | None = None  # what the student sent: an option id as shown, or the value entered
    option: int | None = None  # the bank's option (0-based) that choice meant, for distractor analysis
    response: int | None = None  # the score the server gave the choice
    scored: bool | None = None
    answered_at: datetime | None = None
    response_time_ms: int | None = None  # what the tablet claimed
    seconds: float | None = None  # the answer's time, bounded by the server's measure (domain/effort.py)
    theta_before: float | None = None
    se_before: float | None = None
    theta_after: float | None = None
    se_after: float | None = None
    next_item_id: str | None = None
    items_answered: int | None = None
    stop_reason: str | None = None
    scale_score: float | None = None  # a finished session's score on the test's reporting scale
    scale_se: float | None = None
    level: str | None = None  # the proficiency level reached
    blueprint_version: int | None = None  # the blueprint the session's test was assembled to
    relaxed: str | None = None  # JSON [{"rule", "by"}]: blueprint rules the test could not meet
    person_fit: float | None = None  # lz* of the finished session (domain/effort.py)
    effort: float | None = None  # its response-time effort
    rapid_guesses: int | None = None
    flags: str | None = None  # JSON ["person_fit", "effort"]: what fell short
    accommodations: str | None = None  # the session's, e.g. "extended_time=1.5;text_to_speech"
    # record_type groups only (never in the history table: shipped to its own groups/ prefix):
    # JSON {"language": "es"}, the student's group variables the test's policy names
    groups: str | None = None
    raw_event: str | None = None

    def partition_date(self) -> str:
        """The ``dt=YYYY-MM-DD`` partition this record belongs to (UTC processing date)."""
        return self.processed_at.strftime("%Y-%m-%d")
