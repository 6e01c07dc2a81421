"""A session as it is stored: what the next step needs, packed, and the policy by reference.

The session item is written on every answer and read on every poll, so its size is what a
testing programme pays for (docs/architecture.md, "The session item"). The working
:class:`~irtcat.domain.session.SessionState` is packed here into a small document:

* items are positions in the session's bank version (immutable once published), packed as
  little-endian uint16 and base64 (a bank holds at most 65,535 items); a position's pretest
  flag comes from the bank;
* per answered position: its score (uint8), a 6-byte digest of its ``event_id`` (enough to tell
  a redelivery from another answer: two event ids share one with probability 2^-48), theta
  and SE after it in thousandths (int16, uint16) for the teacher's trajectory, and its time in
  tenths of a second (uint16, for rapid-guess checks);
* a finished session's person fit, effort, rapid guesses and flags;
* the policy by reference: ``test_id`` and ``policy_version`` (a published policy never changes);
  a session started before policies had versions carries its policy inline and goes on with it;
* times as integer microseconds since the epoch.

What the history needs of an answer (the choice, its option, times) travels in the outbox, where
:func:`pack_outbox` leaves out what the state beside it already says.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ..irt.state import PRETEST
from .api import RelaxedRule
from .bank import ItemBank
from .history import HistoryRecord
from .policy import TestPolicy
from .session import ServedItem, SessionState, event_digest
from .student import Accommodations

# the stored form's version: a document without "v" is a whole SessionState (the layout before)
STORED_FORMAT = 2

BankOf = Callable[[str, int], ItemBank]
PolicyOf = Callable[[str, int], TestPolicy]


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode()


def _un64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime | None) -> int | None:
    """Microseconds since the epoch, exactly (no float on the way)."""
    return None if at is None else (at - _EPOCH) // timedelta(microseconds=1)


def _time(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def pack(state: SessionState, bank: ItemBank) -> dict[str, Any]:
    """The stored document of ``state`` (its identity, status and version are the item's own
    attributes, not repeated here). ``bank`` is the session's bank version."""
    index = bank.engine.index
    served = state.served
    answered = [s for s in served if s.response is not None]
    if any(s.response is None for s in served[: len(answered)]):
        raise ValueError(f"session {state.session_id}: only the last served item may await its answer")
    if any(s.event_digest is None or s.theta is None or s.se is None for s in answered):
        raise ValueError(f"session {state.session_id}: an answered position lacks its digest, theta or SE")
    doc: dict[str, Any] = {
        "v": STORED_FORMAT, "t": state.test_id, "b": state.bank_id, "bv": state.bank_version,
        "th0": state.theta_start, "th": state.theta, "se": state.se,
        "k": base64.b64encode(bytes.fromhex(state.secret)).decode(),
        "i": _b64(np.array([index[s.item_id] for s in served], dtype="<u2")),
        "r": _b64(np.array([s.response for s in answered], dtype="u1")),
        "e": "".join(s.event_digest or "" for s in answered),
        "th_": _b64(np.clip([round(s.theta * 1000) for s in answered], -32768, 32767).astype("<i2")),  # type: ignore[operator]
        "se_": _b64(np.clip([round(s.se * 1000) for s in answered], 0, 65535).astype("<u2")),  # type: ignore[operator]
        "c": _micros(state.created_at), "u": _micros(state.updated_at),
    }
    if state.policy_version is None:
        doc["pol"] = state.policy.model_dump(mode="json", exclude_defaults=True)
    else:
        doc["pv"] = state.policy_version
    if state.blocked:
        doc["bl"] = _b64(np.array([index[i] for i in state.blocked], dtype="<u2"))
    if state.excluded:
        # an item seen earlier that this bank version lacks is kept by id (it may come back)
        doc["x"] = _b64(np.array([index[i] for i in state.excluded if i in index], dtype="<u2"))
        gone = [i for i in state.excluded if i not in index]
        if gone:
            doc["xg"] = gone
    if state.shadow_test:
        doc["sh"] = _b64(np.array([index[i] for i in state.shadow_test], dtype="<u2"))
    if state.relaxed:
        doc["rl"] = [[r.rule, r.by] for r in state.relaxed]
    if any(s.seconds is not None for s in answered):
        # tenths of a second, 0xFFFF for an answer without a time (at most 6,553.4 s)
        doc["rt"] = _b64(np.array([0xFFFF if s.seconds is None else min(round(s.seconds * 10), 0xFFFE)
                                   for s in answered], dtype="<u2"))
    checks: dict[str, Any] = {"pf": state.person_fit, "ef": state.effort, "rg": state.rapid_guesses or None,
                              "fl": state.flags or None,
                              "ac": state.accommodations.model_dump(exclude_defaults=True)
                              if state.accommodations else None, "gr": state.groups or None}
    doc.update({k: v for k, v in checks.items() if v is not None})
    for key, value in (("ex", _micros(state.expires_at)), ("f", _micros(state.finished_at)),
                       ("sr", state.stop_reason)):
        if value is not None:
            doc[key] = value
    return doc


def unpack(doc: dict[str, Any], *, session_id: str, student_id: str, status: str, version: int,
           bank_of: BankOf, policy_of: PolicyOf) -> SessionState:
    """The working state of a stored document (either layout)."""
    if "v" not in doc:
        return _whole(doc)
    bank = bank_of(doc["b"], int(doc["bv"]))
    engine = bank.engine
    ids, status_of = engine.item_ids, engine.status
    positions = _un64(doc["i"], "<u2")
    responses = _un64(doc["r"], "u1")
    thetas, ses = _un64(doc["th_"], "<i2") / 1000, _un64(doc["se_"], "<u2") / 1000
    digests = doc["e"]
    times = _un64(doc.get("rt", ""), "<u2")
    width = len(event_digest(""))
    served = []
    for k, j in enumerate(positions):
        item = ServedItem(seq=k + 1, item_id=ids[j], pretest=bool(status_of[j] == PRETEST))
        if k < len(responses):
            item.response = int(responses[k])
            item.event_digest = digests[k * width:(k + 1) * width]
            item.theta, item.se = float(thetas[k]), float(ses[k])
            if k < len(times) and times[k] != 0xFFFF:
                item.seconds = float(times[k]) / 10
        served.append(item)
    policy = (TestPolicy.model_validate(doc["pol"]) if "pol" in doc
              else policy_of(doc["t"], int(doc["pv"])))
    return SessionState(
        session_id=session_id, student_id=student_id, test_id=doc["t"], bank_id=doc["b"],
        bank_version=int(doc["bv"]), policy=policy.model_copy(update={"test_id": doc["t"]}),
        policy_version=doc.get("pv"), status=status,  # type: ignore[arg-type]
        version=version, theta_start=doc["th0"], theta=doc["th"], se=doc["se"], served=served,
        blocked=[ids[j] for j in _un64(doc.get("bl", ""), "<u2")],
        excluded=[ids[j] for j in _un64(doc.get("x", ""), "<u2")] + list(doc.get("xg", [])),
        secret=base64.b64decode(doc["k"]).hex(), stop_reason=doc.get("sr"),
        shadow_test=[ids[j] for j in _un64(doc.get("sh", ""), "<u2")],
        relaxed=[RelaxedRule(rule=r, by=b) for r, b in doc.get("rl", [])],
        person_fit=doc.get("pf"), effort=doc.get("ef"), rapid_guesses=int(doc.get("rg", 0)),
        flags=list(doc.get("fl", [])),
        accommodations=Accommodations.model_validate(doc["ac"]) if "ac" in doc else None,
        groups=dict(doc.get("gr", {})),
        created_at=_EPOCH + timedelta(microseconds=doc["c"]), updated_at=_EPOCH + timedelta(microseconds=doc["u"]),
        expires_at=_time(doc.get("ex")),
        finished_at=_time(doc.get("f")),
    )


def _whole(doc: dict[str, Any]) -> SessionState:
    """A session stored whole, as sessions started before this layout are: each answered
    position keeps the digest of its event_id; what only the history needed is dropped."""
    served = []
    for s in doc.get("served", []):
        event_id = s.get("event_id")
        served.append({k: v for k, v in s.items() if k in ServedItem.model_fields}
                      | {"event_digest": event_digest(event_id) if event_id else None})
    return SessionState.model_validate({**doc, "served": served})


# what a history record shares with the state its commit writes: left out of the outbox when equal
_CONTEXT = ("session_id", "student_id", "test_id", "bank_id", "bank_version", "theta_after", "se_after")


def outbox_context(session_id: str, student_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """What the outbox's records share with the stored state (either layout), read without the bank."""
    if "v" not in doc:
        return {"session_id": session_id, "student_id": student_id, "test_id": doc.get("test_id"),
                "bank_id": doc.get("bank_id"), "bank_version": doc.get("bank_version"),
                "theta_after": doc.get("theta"), "se_after": doc.get("se")}
    return {"session_id": session_id, "student_id": student_id, "test_id": doc["t"], "bank_id": doc["b"],
            "bank_version": doc["bv"], "theta_after": doc["th"], "se_after": doc["se"]}


def state_context(state: SessionState) -> dict[str, Any]:
    """:func:`outbox_context` of a working state."""
    return {"session_id": state.session_id, "student_id": state.student_id, "test_id": state.test_id,
            "bank_id": state.bank_id, "bank_version": state.bank_version, "theta_after": state.theta,
            "se_after": state.se}


def pack_outbox(records: list[HistoryRecord], context: dict[str, Any]) -> str:
    """The step's history records as JSON lines, without what ``context`` (the state written
    beside them) already says; :func:`unpack_outbox` restores them exactly."""
    lines = []
    for record in records:
        doc = record.model_dump(mode="json", exclude_none=True)
        for key in _CONTEXT:
            if doc.get(key) == context[key]:
                doc.pop(key, None)
            elif key not in doc:
                doc[key] = None  # None here, a value in the state: say so
        lines.append(json.dumps(doc, separators=(",", ":")))
    return "\n".join(lines)


def unpack_outbox(text: str, context: dict[str, Any]) -> list[HistoryRecord]:
    """The history records of :func:`pack_outbox` (and of the whole-record lines written before)."""
    records = []
    for line in text.splitlines():
        if line.strip():
            doc = json.loads(line)
            for key in _CONTEXT:
                doc.setdefault(key, context[key])
            records.append(HistoryRecord.model_validate(doc))
    return records
