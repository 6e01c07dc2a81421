"""Messages: the tablet's answer event and the session API's requests and replies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from .base import Message

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MAX_EVENT_BYTES = 4096
ANSWER_SCHEMA_VERSION = 2
# what a student chose: an option's id as shown ("A", "B", ...), or the number entered
Choice = StrictStr | StrictInt | StrictFloat


class AnswerEvent(Message):
    """An answer published by a tablet into Kinesis (record data, JSON, schema_version 2).

    ``seq`` is the 1-based position of the item the tablet was serving; ``choice`` is what the
    student did: the id of the option chosen, as shown (``"A"``, ``"B"``, ...), or the value
    entered for a numeric-entry item. The server scores it (:mod:`irtcat.domain.scoring`); the
    tablet never holds a key. Unknown fields are rejected.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[2]
    event_id: UUID
    session_id: str = Field(pattern=ID_PATTERN)
    student_id: str = Field(pattern=ID_PATTERN)
    item_id: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=1, le=10_000)
    choice: Choice = Field(union_mode="left_to_right")
    answered_at: AwareDatetime
    response_time_ms: int | None = Field(default=None, ge=0, le=86_400_000)


def contract_problem(payload: object) -> str | None:
    """Why ``payload`` is not in the current answer contract, when its version is the reason."""
    if not isinstance(payload, dict):
        return None
    version = payload.get("schema_version")
    if "response" in payload or version == 1:
        return ("answer contract version 1 (a score from the tablet in 'response') is no longer accepted: "
                f"send schema_version {ANSWER_SCHEMA_VERSION} with 'choice', the option id or value the student "
                "entered; the server scores it")
    if version is not None and version != ANSWER_SCHEMA_VERSION:
        return f"unknown answer contract version {version!r}: this server accepts schema_version {ANSWER_SCHEMA_VERSION}"
    return None


class StartSessionRequest(Message):
    """Body of ``POST /sessions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student_id: str = Field(pattern=ID_PATTERN)
    test_id: str = Field(pattern=ID_PATTERN)


class OptionView(Message):
    """One option as the tablet shows it: the id to send back as ``choice``, and its text."""

    id: str
    text: str


class ServedItemView(Message):
    """What the tablet shows: the item to answer at position ``seq``, never its key.
    ``kind``: ``choice`` (send an option's id) or ``numeric`` (send the number entered)."""

    item_id: str
    seq: int
    kind: Literal["choice", "numeric"] | None = None
    stem: str | None = None
    options: list[OptionView] | None = None


class SessionResult(Message):
    """A finished session's outcome: theta and its SE, and what people read, the score on the
    test's reporting scale with its SE and the proficiency level reached."""

    theta: float
    se: float
    scale_score: float
    scale_se: float
    level: str | None = None
    items_answered: int
    stop_reason: str
    finished_at: datetime


class SessionView(Message):
    """Reply of ``POST /sessions`` and ``GET /sessions/{id}``. A timed session carries when it
    expires and the seconds left at the time of the reply."""

    session_id: str
    student_id: str
    test_id: str
    status: Literal["active", "finished"]
    answered: int
    item: ServedItemView | None = None
    result: SessionResult | None = None
    expires_at: datetime | None = None
    remaining_seconds: float | None = None


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
    scale_score: float
    scale_se: float
    level: str | None = None
    stop_reason: str | None = None
    created_at: datetime
    trajectory: list[TrajectoryPoint]
