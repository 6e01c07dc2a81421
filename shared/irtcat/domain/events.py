"""The event the tablets publish: an answer, in the contract's current version (3; version 2
stays valid for the answers it covers: one option id, or one number)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, model_validator

from .base import ID_PATTERN, Message

MAX_EVENT_BYTES = 4096
# an answer event is flat (a choice may be a list or an object of values): anything deeper is
# refused by this limit, the same on every Python (whose parser's own recursion limit varies)
MAX_EVENT_DEPTH = 8
ANSWER_SCHEMA_VERSION = 3
ACCEPTED_VERSIONS = (2, 3)
# what a student chose: an option's id as shown ("A", "B", ...), the number or text entered;
# version 3 adds a list of option ids (checkboxes) and an object keyed by response (several blanks)
Scalar = StrictStr | StrictInt | StrictFloat
Value = Scalar | list[StrictStr]
Choice = Scalar | list[StrictStr] | dict[str, Value]


class AnswerEvent(Message):
    """An answer published by a tablet into Kinesis (record data, JSON, schema_version 3 or 2).

    ``seq`` is the 1-based position of the item the tablet was serving; ``choice`` is what the
    student did: the id of the option chosen, as shown (``"A"``, ``"B"``, ...), the value
    entered (a number, or a text), the list of option ids ticked (a multiple-response item), or,
    for an item of several responses, an object of those keyed by response id (version 3 only).
    The server scores it (:mod:`irtcat.domain.scoring`); the tablet never holds a key. Unknown
    fields are rejected.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[2, 3]
    event_id: UUID
    session_id: str = Field(pattern=ID_PATTERN)
    student_id: str = Field(pattern=ID_PATTERN)
    item_id: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=1, le=10_000)
    choice: Choice = Field(union_mode="left_to_right")
    answered_at: AwareDatetime
    response_time_ms: int | None = Field(default=None, ge=0, le=86_400_000)

    @model_validator(mode="after")
    def _version_covers_choice(self) -> AnswerEvent:
        if self.schema_version == 2 and isinstance(self.choice, list | dict):
            raise ValueError("a list or an object as choice needs schema_version 3 (version 2 carries one option "
                             "id or one number)")
        return self


def contract_problem(payload: object) -> str | None:
    """Why ``payload`` is not in the current answer contract, when its version is the reason."""
    if not isinstance(payload, dict):
        return None
    version = payload.get("schema_version")
    if "response" in payload or version == 1:
        return ("answer contract version 1 (a score from the tablet in 'response') is no longer accepted: "
                f"send schema_version {ANSWER_SCHEMA_VERSION} with 'choice', the option id or value the student "
                "entered; the server scores it")
    if version is not None and version not in ACCEPTED_VERSIONS:
        return (f"unknown answer contract version {version!r}: "
                f"this server accepts schema_version {' or '.join(map(str, ACCEPTED_VERSIONS))}")
    return None


def nesting_depth(value: object, limit: int = MAX_EVENT_DEPTH) -> int:
    """How deep lists and objects nest in a parsed JSON value (a scalar: 0), counted only up
    to ``limit + 1``: enough to tell that it is too deep, without walking all of it."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest
