"""A student across sessions: the last known ability and the items already seen, per test; the
accommodations a test is taken with, and the group variables DIF studies read."""

from __future__ import annotations

import json
import re
from datetime import datetime

from pydantic import ConfigDict, Field

from .base import ID_PATTERN, Message, first_error

# how many item ids a profile keeps per test, newest last: bounds the profile's list for one test
# at 500 ids (about 5 KB at 10-byte ids, stored by :func:`pack_seen`; DynamoDB items hold 400 KB)
SEEN_ITEMS_PER_TEST = 500


# the key of accommodations that hold for every test
ALL_TESTS = "*"
GROUP_NAME = r"^[a-z][a-z0-9_]{0,31}$"


class Accommodations(Message):
    """How a student takes a test: time limits scaled by ``extended_time``; the item read aloud
    on request (the browser's speech synthesis); a larger font. A session copies them when it
    starts; the teacher view and the history show them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extended_time: float = Field(default=1.0, ge=1.0, le=4.0, description="time limits scale by this")
    text_to_speech: bool = False
    large_font: bool = False

    def label(self) -> str:
        """``extended_time=1.5;text_to_speech``: the history's and the teacher view's short form."""
        parts = [f"extended_time={self.extended_time:g}"] if self.extended_time != 1.0 else []
        parts += [name for name in ("text_to_speech", "large_font") if getattr(self, name)]
        return ";".join(parts)


class AccommodationsRequest(Accommodations):
    """Body of ``PUT /students/{id}/accommodations``: the accommodations for ``test_id`` (``*``:
    every test); all defaults remove them."""

    test_id: str = Field(default=ALL_TESTS, pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9._:\-]{0,127})$")

    def accommodations(self) -> Accommodations:
        return Accommodations.model_validate(self.model_dump(exclude={"test_id"}))


class AccommodationsView(Message):
    """Reply of ``GET``/``PUT /students/{id}/accommodations``: the student's accommodations by test."""

    student_id: str
    accommodations: dict[str, Accommodations]


def accommodations_view(student_id: str, profile: StudentProfile | None) -> AccommodationsView:
    return AccommodationsView(student_id=student_id, accommodations=dict(profile.accommodations) if profile else {})


class StudentProfile(Message):
    """A student's last known ability (the starting point of their next session; None before
    their first finished session) and, per test, the items served to them in earlier sessions
    (never served again). A profile written at the end of a session carries ``seen`` for that
    session's test only; the repositories keep each test's list apart, so writing one leaves the
    others as they were. ``accommodations`` (per test id, or :data:`ALL_TESTS`) and ``groups``
    (e.g. ``{"language": "es"}``) are set by an admin or a teacher, never by a session, and
    never sent to a tablet."""

    model_config = ConfigDict(extra="forbid")

    student_id: str
    theta: float | None = None
    se: float | None = None
    sessions_finished: int = 0
    last_session_id: str | None = None
    updated_at: datetime
    seen: dict[str, list[str]] = Field(default_factory=dict)
    accommodations: dict[str, Accommodations] = Field(default_factory=dict)
    groups: dict[str, str] = Field(default_factory=dict)

    def seen_in(self, test_id: str) -> list[str]:
        return list(self.seen.get(test_id, []))

    def accommodations_for(self, test_id: str) -> Accommodations | None:
        """The test's own accommodations, else those for every test (None: none)."""
        found = self.accommodations.get(test_id) or self.accommodations.get(ALL_TESTS)
        return found if found is not None and found != Accommodations() else None


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


ACCOMMODATION_COLUMNS = ("extended_time", "text_to_speech", "large_font")
_TRUE, _FALSE = {"1", "true", "yes", "y"}, {"", "0", "false", "no", "n"}


def settings_row(row: dict[str, str], where: str) -> tuple[str, str, Accommodations | None, dict[str, str]]:
    """One row of ``irtcat students import``: ``student_id``, optional ``test_id`` (default every
    test), ``accommodation.<name>`` and ``group.<name>`` columns. Returns the student, the test,
    the accommodations (None: none) and the groups; ValueError naming the row and column."""
    cells = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    student_id = cells.get("student_id", "")
    if not re.fullmatch(ID_PATTERN, student_id):
        raise ValueError(f"{where} column student_id: {student_id!r} is not a student id")
    test_id = cells.get("test_id") or ALL_TESTS
    values: dict[str, object] = {}
    for name in ACCOMMODATION_COLUMNS:
        text = cells.get(f"accommodation.{name}", "")
        if name == "extended_time":
            if text:
                try:
                    values[name] = float(text)
                except ValueError:
                    raise ValueError(f"{where} column accommodation.extended_time: {text!r} is not a number") from None
        elif text.lower() in _TRUE | _FALSE:
            values[name] = text.lower() in _TRUE
        else:
            raise ValueError(f"{where} column accommodation.{name}: {text!r} is not yes or no")
    unknown = [k for k in cells if k.startswith("accommodation.") and k.split(".", 1)[1] not in ACCOMMODATION_COLUMNS]
    if unknown:
        allowed = ", ".join(f"accommodation.{n}" for n in ACCOMMODATION_COLUMNS)
        raise ValueError(f"{where} column {unknown[0]}: not one of {allowed}")
    try:
        accommodations = Accommodations.model_validate(values)
    except ValueError as exc:
        raise ValueError(f"{where}: {first_error(exc)}") from None
    groups = {}
    for key, value in cells.items():
        if key.startswith("group."):
            name = key.split(".", 1)[1]
            if not re.fullmatch(GROUP_NAME, name):
                raise ValueError(f"{where} column {key}: a group name is 1-32 lowercase letters, digits or _")
            if value:
                groups[name] = value[:64]
    return student_id, test_id, (accommodations if accommodations != Accommodations() else None), groups
