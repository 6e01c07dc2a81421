"""A student across sessions: the last known ability and the items already seen, per test."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from .base import Message

# how many item ids a profile keeps per test, newest last: bounds the profile's list for one test
# at 500 ids (about 6 KB at 12-byte ids; DynamoDB items hold 400 KB)
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
