"""Messages: the tablet's answer event and the session API's requests and replies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, ConfigDict, Field

from .base import Message

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MAX_EVENT_BYTES = 4096


class AnswerEvent(Message):
    """An answer published by a tablet into Kinesis (record data, JSON, schema_version 1).

    ``seq`` is the 1-based position of the item the tablet was serving; ``response`` is 0/1.
    Unknown fields are rejected.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    event_id: UUID
    session_id: str = Field(pattern=ID_PATTERN)
    student_id: str = Field(pattern=ID_PATTERN)
    item_id: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=1, le=10_000)
    response: Literal[0, 1]
    answered_at: AwareDatetime
    response_time_ms: int | None = Field(default=None, ge=0, le=86_400_000)


class StartSessionRequest(Message):
    """Body of ``POST /sessions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student_id: str = Field(pattern=ID_PATTERN)
    test_id: str = Field(pattern=ID_PATTERN)


class ServedItemView(Message):
    """What the tablet shows: the item to answer at position ``seq``."""

    item_id: str
    seq: int
    stem: str | None = None
    options: list[str] | None = None
    key: int | None = Field(default=None, description="index of the correct option (scored on the tablet)")


class SessionResult(Message):
    """A finished session's outcome."""

    theta: float
    se: float
    items_answered: int
    stop_reason: str
    finished_at: datetime


class SessionView(Message):
    """Reply of ``POST /sessions`` and ``GET /sessions/{id}``."""

    session_id: str
    student_id: str
    test_id: str
    status: Literal["active", "finished"]
    answered: int
    item: ServedItemView | None = None
    result: SessionResult | None = None


class TrajectoryPoint(Message):
    seq: int
    theta: float
    se: float


class SessionSummary(Message):
    """A session as a teacher sees it: status, ability so far and its trajectory."""

    session_id: str
    student_id: str
    test_id: str
    status: Literal["active", "finished"]
    answered: int
    theta: float
    se: float
    stop_reason: str | None = None
    created_at: datetime
    trajectory: list[TrajectoryPoint]
