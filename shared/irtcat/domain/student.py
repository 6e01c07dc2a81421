"""A student across sessions: the last known ability and the items already seen, per test."""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import ConfigDict, Field

from .base import Message

# how many item ids a profile keeps per test, newest last: bounds the profile's list for one test
# at 500 ids (about 5 KB at 10-byte ids, stored by :func:`pack_seen`; DynamoDB items hold 400 KB)
SEEN_ITEMS_PER_TEST = 500


class StudentProfile(Message):
    """A student's last known ability (the starting point of their next session) and, per
    test, the items served to them in earlier sessions (never served again). A profile written
    at the end of a session carries ``seen`` for that session's test only; the repositories
    keep each test's list apart, so writing one leaves the others as they were."""

    model_config = ConfigDict(extra="forbid")

    student_id: str
    theta: float
    se: float
    sessions_finished: int = 0
    last_session_id: str | None = None
    updated_at: datetime
    seen: dict[str, list[str]] = Field(default_factory=dict)

    def seen_in(self, test_id: str) -> list[str]:
        return list(self.seen.get(test_id, []))


def seen_after(earlier: list[str], served: list[str]) -> list[str]:
    """The items seen in a test after a session: ``earlier`` then ``served``, each once, the
    newest :data:`SEEN_ITEMS_PER_TEST` kept (a student who has seen more than that may meet
    the oldest again)."""
    return list(dict.fromkeys([*earlier, *served]))[-SEEN_ITEMS_PER_TEST:]


def pack_seen(ids: list[str]) -> str:
    """A test's seen items as stored: the ids one per line (a JSON list, the layout before, when
    an id could be mistaken for it)."""
    if any("\n" in i for i in ids) or (ids and ids[0].startswith("[")):
        return json.dumps(ids)
    return "\n".join(ids)


def unpack_seen(text: str) -> list[str]:
    """The ids of :func:`pack_seen` (either layout)."""
    if text.startswith("["):
        return [str(i) for i in json.loads(text)]
    return text.split("\n") if text else []
