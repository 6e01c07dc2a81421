"""The event the tablets publish: an answer, in the contract's current version (2)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from .base import ID_PATTERN, Message

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
        return (f"unknown answer contract version {version!r}: "
                f"this server accepts schema_version {ANSWER_SCHEMA_VERSION}")
    return None
