"""The session API's requests and replies (``POST /sessions``, ``GET /sessions/{id}``, the
teacher's ``GET /tests/{id}/sessions``). What a reply carries never includes a key."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from html import escape, unescape
from typing import Literal

from pydantic import ConfigDict, Field

from .base import ID_PATTERN, Message
from .responses import ResponseKind
from .student import Accommodations


class StartSessionRequest(Message):
    """Body of ``POST /sessions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student_id: str = Field(pattern=ID_PATTERN)
    test_id: str = Field(pattern=ID_PATTERN)


class OptionView(Message):
    """One option as the tablet shows it: the id to send back as ``choice``, and its text."""

    id: str
    text: str


class ResponseView(Message):
    """One response of an item scored by its responses, as the tablet fills it in: ``kind``
    ``choice`` (send an option's id), ``multiple_response`` (a list of ids), ``inline_choice``
    (an id, from a select inside the stem), ``numeric`` (a number), ``text`` (the text typed).
    The stem holds ``<div data-response="ID">`` or ``<span data-response="ID">`` where it goes."""

    id: str
    kind: ResponseKind
    prompt: str | None = None
    options: list[OptionView] | None = None
    max_choices: int | None = None


class ServedItemView(Message):
    """What the tablet shows: the item to answer at position ``seq``, never its key.
    ``kind``: ``choice`` (send an option's id) or ``numeric`` (send the number entered), or for
    an item scored by its ``responses`` their kind (answer contract version 3: one response's
    value, or an object keyed by response id); ``partial_credit``: answers earn part of the
    credit (what each earns stays on the server); ``passage``: the shared stimulus shown with it
    (sanitised HTML). Stem, prompts and options are sanitised HTML."""

    item_id: str
    seq: int
    kind: ResponseKind | None = None
    partial_credit: bool = False
    stem: str | None = None
    options: list[OptionView] | None = None
    responses: list[ResponseView] | None = None
    passage: str | None = None


class RelaxedRule(Message):
    """A blueprint rule the session's test could not meet with the items left, and by how much
    it gave way (items for a count rule, the quantity's units for a sum rule)."""

    model_config = ConfigDict(extra="forbid")
    rule: str
    by: float


class SessionResult(Message):
    """A finished session's outcome: theta and its SE, and what people read, the score on the
    test's reporting scale with its SE and the proficiency level reached."""

    theta: float
    se: float
    scale_score: float
    scale_se: float
    level: str | None = None
    items_answered: int
    stop_reason: str
    finished_at: datetime
    relaxed: list[RelaxedRule] = Field(default_factory=list)  # blueprint rules the test could not meet
    # whether it was answered in earnest (domain/effort.py): lz*, response-time effort, rapid
    # guesses, and what fell short ("person_fit", "effort")
    person_fit: float | None = None
    effort: float | None = None
    rapid_guesses: int = 0
    flags: list[str] = Field(default_factory=list)


class SessionView(Message):
    """Reply of ``POST /sessions`` and ``GET /sessions/{id}``. A timed session carries when it
    expires and the seconds left at the time of the reply."""

    session_id: str
    student_id: str
    test_id: str
    bank_id: str | None = None
    status: Literal["active", "finished"]
    answered: int
    item: ServedItemView | None = None
    result: SessionResult | None = None
    expires_at: datetime | None = None
    remaining_seconds: float | None = None
    accommodations: Accommodations | None = None


class TrajectoryPoint(Message):
    seq: int
    theta: float
    se: float


class SessionSummary(Message):
    """A session as a teacher sees it: status, ability so far and its trajectory."""

    session_id: str
    student_id: str
    test_id: str
    status: Literal["active", "finished"]
    answered: int
    theta: float
    se: float
    scale_score: float
    scale_se: float
    level: str | None = None
    stop_reason: str | None = None
    # a finished session that was not answered in earnest says why (domain/effort.py)
    flags: list[str] = Field(default_factory=list)
    effort: float | None = None
    person_fit: float | None = None
    accommodations: str | None = None  # e.g. "extended_time=1.5;text_to_speech" (Accommodations.label)
    created_at: datetime
    trajectory: list[TrajectoryPoint]


# a bank media reference in served content: src="media/<path>" (docs/items.md)
_MEDIA_SRC = re.compile(r'src="media/([^"]+)"')


def link_media(view: SessionView, url: Callable[[str, str], str]) -> SessionView:
    """``view`` with every ``src="media/<path>"`` in its item's stem, prompts, options and
    passage replaced by ``url(bank_id, path)`` (a short-lived signed link to the bank bucket)."""
    item = view.item
    if item is None or view.bank_id is None:
        return view
    bank_id = view.bank_id

    def fix(html: str | None) -> str | None:
        if html is None or "media/" not in html:
            return html
        return _MEDIA_SRC.sub(lambda m: f'src="{escape(url(bank_id, unescape(m.group(1))))}"', html)

    def options(opts: list[OptionView] | None) -> list[OptionView] | None:
        return None if opts is None else [o.model_copy(update={"text": fix(o.text)}) for o in opts]

    responses = None if item.responses is None else [
        r.model_copy(update={"prompt": fix(r.prompt), "options": options(r.options)}) for r in item.responses]
    linked = item.model_copy(update={"stem": fix(item.stem), "passage": fix(item.passage),
                                     "options": options(item.options), "responses": responses})
    return view.model_copy(update={"item": linked})
