"""What the domain needs from storage, as protocols; the adapters implement them."""

from __future__ import annotations

from typing import Protocol

from .bank import ItemBank
from .history import HistoryRecord
from .policy import TestDefinition, TestPolicy
from .session import SessionState
from .student import StudentProfile


class Conflict(Exception):
    """The stored session's version moved on since it was read (optimistic locking)."""


class NotFound(Exception):
    """A session, test or bank that does not exist."""


class SessionRepository(Protocol):
    def get(self, session_id: str, consistent: bool = True) -> SessionState | None:
        """The stored session; ``consistent=False`` may return the one before the latest write
        (half the read's cost: for reads where a stale answer is harmless)."""
        ...
    def latest_for(self, student_id: str, test_id: str) -> SessionState | None: ...
    def create(self, state: SessionState, replaces: str | None = None) -> None: ...
    def commit(self, state: SessionState, expected_version: int, profile: StudentProfile | None,
               outbox: list[HistoryRecord] | None = None) -> None:
        """Write ``state`` if the stored version is still ``expected_version`` (else
        :class:`Conflict`), with the profile and, in the same atomic write, the history records
        of the step (the outbox), which the history receives from that write."""
        ...
    def list_by_test(self, test_id: str, limit: int = 50) -> list[SessionState]: ...


class StudentRepository(Protocol):
    def get(self, student_id: str) -> StudentProfile | None: ...


class BankStore(Protocol):
    def bank(self, bank_id: str, version: int) -> ItemBank: ...
    def current_version(self, bank_id: str) -> int: ...
    def test(self, test_id: str) -> TestDefinition: ...
    def policy(self, test_id: str, version: int) -> TestPolicy:
        """A published version of a test's policy (immutable)."""
        ...


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
