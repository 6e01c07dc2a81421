"""What the domain needs from storage, as protocols; the adapters implement them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import ConfigDict, Field

from .bank import ItemBank
from .base import Message
from .history import HistoryRecord
from .policy import TestPolicy
from .session import SessionState

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


class TestDefinition(Message):
    """A test: which bank it draws from and its policy (stored beside the banks)."""

    __test__ = False
    model_config = ConfigDict(extra="forbid")

    test_id: str
    bank_id: str
    policy: TestPolicy = Field(default_factory=TestPolicy)


class Conflict(Exception):
    """The stored session's version moved on since it was read (optimistic locking)."""


class NotFound(Exception):
    """A session, test or bank that does not exist."""


class SessionRepository(Protocol):
    def get(self, session_id: str) -> SessionState | None: ...
    def latest_for(self, student_id: str, test_id: str) -> SessionState | None: ...
    def create(self, state: SessionState, replaces: str | None = None) -> None: ...
    def commit(self, state: SessionState, expected_version: int, profile: StudentProfile | None) -> None: ...
    def list_by_test(self, test_id: str, limit: int = 50) -> list[SessionState]: ...


class StudentRepository(Protocol):
    def get(self, student_id: str) -> StudentProfile | None: ...


class BankStore(Protocol):
    def bank(self, bank_id: str, version: int) -> ItemBank: ...
    def current_version(self, bank_id: str) -> int: ...
    def test(self, test_id: str) -> TestDefinition: ...


class BankPublisher(BankStore, Protocol):
    def publish(self, bank: ItemBank, make_current: bool = True) -> None: ...


class ObjectStore(Protocol):
    """Keys to bytes (an S3 bucket): the calibration job's working storage and the history."""

    def get(self, key: str) -> bytes: ...
    def put(self, key: str, data: bytes) -> None: ...
    def list(self, prefix: str) -> list[str]: ...


class HistorySink(Protocol):
    def put(self, records: list[HistoryRecord]) -> None: ...


class Quarantine(Protocol):
    def put(self, raw: str, reason: str, source: dict[str, object]) -> str: ...
