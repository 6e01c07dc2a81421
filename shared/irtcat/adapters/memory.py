"""In-memory implementations of the domain's ports: for tests, samples and dry runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..domain.bank import ItemBank
from ..domain.history import HistoryRecord
from ..domain.policy import TestDefinition
from ..domain.ports import Conflict, NotFound
from ..domain.session import SessionState
from ..domain.student import StudentProfile


@dataclass
class MemorySessions:
    """Sessions with the same optimistic locking as DynamoDB; profiles go to ``students``."""

    items: dict[str, str] = field(default_factory=dict)
    students: MemoryStudents | None = None
    latest: dict[tuple[str, str], str] = field(default_factory=dict)
    # where a commit's outbox goes, as the table's stream and ShipHistory deliver it on AWS
    history: MemoryHistory | None = None

    def get(self, session_id: str) -> SessionState | None:
        doc = self.items.get(session_id)
        return SessionState.model_validate_json(doc) if doc else None

    def list_by_test(self, test_id: str, limit: int = 50) -> list[SessionState]:
        states = [SessionState.model_validate_json(d) for d in self.items.values()]
        mine = sorted((s for s in states if s.test_id == test_id), key=lambda s: s.created_at, reverse=True)
        return mine[:limit]

    def latest_for(self, student_id: str, test_id: str) -> SessionState | None:
        session_id = self.latest.get((student_id, test_id))
        return self.get(session_id) if session_id else None

    def create(self, state: SessionState, replaces: str | None = None) -> None:
        key = (state.student_id, state.test_id)
        if state.session_id in self.items or self.latest.get(key) != replaces:
            raise Conflict(f"session {state.session_id} exists, or another start won")
        self.items[state.session_id] = state.model_dump_json()
        self.latest[key] = state.session_id

    def commit(self, state: SessionState, expected_version: int, profile: StudentProfile | None,
               outbox: list[HistoryRecord] | None = None) -> None:
        current = self.get(state.session_id)
        if current is None or current.version != expected_version:
            raise Conflict(f"session {state.session_id} is no longer at version {expected_version}")
        self.items[state.session_id] = state.model_dump_json()
        if profile is not None and self.students is not None:
            self.students.put(profile)
        if outbox and self.history is not None:
            self.history.put(outbox)


@dataclass
class MemoryStudents:
    items: dict[str, StudentProfile] = field(default_factory=dict)

    def get(self, student_id: str) -> StudentProfile | None:
        return self.items.get(student_id)

    def put(self, profile: StudentProfile) -> None:
        old = self.items.get(profile.student_id)
        finished = (old.sessions_finished if old else 0) + 1
        seen = {**(old.seen if old else {}), **profile.seen}  # one test's list replaces only its own
        self.items[profile.student_id] = profile.model_copy(update={"sessions_finished": finished, "seen": seen})


@dataclass
class MemoryBanks:
    banks: dict[tuple[str, int], ItemBank] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)
    tests: dict[str, TestDefinition] = field(default_factory=dict)

    def publish(self, bank: ItemBank, make_current: bool = True) -> None:
        self.banks[(bank.bank_id, bank.version)] = bank
        if make_current:
            self.current[bank.bank_id] = bank.version

    def put_test(self, test: TestDefinition) -> None:
        self.tests[test.test_id] = test

    def bank(self, bank_id: str, version: int) -> ItemBank:
        try:
            return self.banks[(bank_id, version)]
        except KeyError:
            raise NotFound(f"bank {bank_id} v{version} not found") from None

    def current_version(self, bank_id: str) -> int:
        try:
            return self.current[bank_id]
        except KeyError:
            raise NotFound(f"bank {bank_id} not found") from None

    def test(self, test_id: str) -> TestDefinition:
        try:
            return self.tests[test_id]
        except KeyError:
            raise NotFound(f"test {test_id} not found") from None


@dataclass
class MemoryHistory:
    records: list[HistoryRecord] = field(default_factory=list)

    def put(self, records: list[HistoryRecord]) -> None:
        self.records.extend(records)


@dataclass
class MemoryQuarantine:
    items: dict[str, dict[str, object]] = field(default_factory=dict)

    def put(self, raw: str, reason: str, source: dict[str, object]) -> str:
        key = f"quarantine/{len(self.items):06d}.json"
        self.items[key] = {"raw": raw, "reason": reason, "source": source}
        return key


class MemoryObjects:
    """An in-memory :class:`~irtcat.domain.ports.ObjectStore`."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = bytes(data)

    def list(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))
