"""In-memory implementations of the domain's ports: for tests, samples and dry runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..domain.bank import ItemBank
from ..domain.history import HistoryRecord
from ..domain.policy import TestDefinition, TestPolicy
from ..domain.ports import Conflict, NotFound
from ..domain.session import SessionState
from ..domain.stored import outbox_context, pack, pack_outbox, unpack, unpack_outbox
from ..domain.student import Accommodations, StudentProfile


@dataclass
class MemorySessions:
    """Sessions with the same optimistic locking as DynamoDB and the same stored form
    (:mod:`irtcat.domain.stored`, banks and policies from ``catalog``); profiles go to
    ``students``."""

    catalog: MemoryBanks
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    students: MemoryStudents | None = None
    latest: dict[tuple[str, str], str] = field(default_factory=dict)
    # where a commit's outbox goes, as the table's stream and ShipHistory deliver it on AWS
    history: MemoryHistory | None = None

    def _state(self, stored: dict[str, Any]) -> SessionState:
        return unpack(json.loads(stored["doc"]), session_id=stored["session_id"], student_id=stored["student_id"],
                      status=stored["status"], version=stored["version"], bank_of=self.catalog.bank,
                      policy_of=self.catalog.policy)

    def _put(self, state: SessionState) -> dict[str, Any]:
        doc = pack(state, self.catalog.bank(state.bank_id, state.bank_version))
        stored = {"session_id": state.session_id, "student_id": state.student_id, "status": state.status,
                  "version": state.version, "doc": json.dumps(doc, separators=(",", ":"))}
        self.items[state.session_id] = stored
        return doc

    def get(self, session_id: str, consistent: bool = True) -> SessionState | None:
        stored = self.items.get(session_id)
        return self._state(stored) if stored else None

    def list_by_test(self, test_id: str, limit: int = 50) -> list[SessionState]:
        states = [self._state(d) for d in self.items.values()]
        mine = sorted((s for s in states if s.test_id == test_id), key=lambda s: s.created_at, reverse=True)
        return mine[:limit]

    def latest_for(self, student_id: str, test_id: str) -> SessionState | None:
        session_id = self.latest.get((student_id, test_id))
        return self.get(session_id) if session_id else None

    def create(self, state: SessionState, replaces: str | None = None) -> None:
        key = (state.student_id, state.test_id)
        if state.session_id in self.items or self.latest.get(key) != replaces:
            raise Conflict(f"session {state.session_id} exists, or another start won")
        self._put(state)
        self.latest[key] = state.session_id

    def commit(self, state: SessionState, expected_version: int, profile: StudentProfile | None,
               outbox: list[HistoryRecord] | None = None) -> None:
        current = self.items.get(state.session_id)
        if current is None or current["version"] != expected_version:
            raise Conflict(f"session {state.session_id} is no longer at version {expected_version}")
        doc = self._put(state)
        if profile is not None and self.students is not None:
            self.students.put(profile)
        if outbox and self.history is not None:
            # through the stored form, as the table's stream hands the outbox to ShipHistory
            context = outbox_context(state.session_id, state.student_id, doc)
            self.history.put(unpack_outbox(pack_outbox(outbox, context), context))


@dataclass
class MemoryStudents:
    items: dict[str, StudentProfile] = field(default_factory=dict)

    def get(self, student_id: str) -> StudentProfile | None:
        return self.items.get(student_id)

    def put(self, profile: StudentProfile) -> None:
        old = self.items.get(profile.student_id)
        finished = (old.sessions_finished if old else 0) + 1
        seen = {**(old.seen if old else {}), **profile.seen}  # one test's list replaces only its own
        kept = {"accommodations": old.accommodations, "groups": old.groups} if old else {}
        self.items[profile.student_id] = profile.model_copy(update={"sessions_finished": finished, "seen": seen,
                                                                    **kept})

    def _profile(self, student_id: str) -> StudentProfile:
        return self.items.get(student_id) or StudentProfile(student_id=student_id, updated_at=datetime.now(UTC))

    def set_accommodations(self, student_id: str, test_id: str, accommodations: Accommodations | None) -> None:
        old = self._profile(student_id)
        acc = {k: v for k, v in old.accommodations.items() if k != test_id}
        if accommodations is not None and accommodations != Accommodations():
            acc[test_id] = accommodations
        self.items[student_id] = old.model_copy(update={"accommodations": acc})

    def set_groups(self, student_id: str, groups: dict[str, str]) -> None:
        self.items[student_id] = self._profile(student_id).model_copy(update={"groups": dict(groups)})


@dataclass
class MemoryBanks:
    banks: dict[tuple[str, int], ItemBank] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)
    tests: dict[str, TestDefinition] = field(default_factory=dict)

    def publish(self, bank: ItemBank, make_current: bool = True) -> None:
        self.banks[(bank.bank_id, bank.version)] = bank
        if make_current:
            self.current[bank.bank_id] = bank.version

    policies: dict[tuple[str, int], TestPolicy] = field(default_factory=dict)

    def put_test(self, test: TestDefinition) -> TestDefinition:
        """Store the test; its policy becomes a new published version when it differs from
        the last one."""
        last = self.tests.get(test.test_id)
        if last is not None and last.policy_version is not None and last.policy == test.policy:
            version = last.policy_version
        else:
            version = max((v for t, v in self.policies if t == test.test_id), default=0) + 1
            self.policies[(test.test_id, version)] = test.policy
        written = self.tests[test.test_id] = test.model_copy(update={"policy_version": version})
        return written

    def policy(self, test_id: str, version: int) -> TestPolicy:
        try:
            return self.policies[(test_id, version)]
        except KeyError:
            raise NotFound(f"policy v{version} of test {test_id} not found") from None

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
