"""Items scored by their own rules: one or more response variables (QTI's ``responseDeclaration``)
and how they add up to the item's score.

A bank's own items are scored by a key (``Item.key``, ``answer_value``, ``credits``); an
imported item may need more: checkboxes, a select inside a sentence, a typed word, several
blanks, a mapping that gives part of the credit. Such an item carries ``responses`` (one
:class:`ResponseSpec` per blank, in the order of the item body), ``processing`` and
``score_values``:

- ``match_correct``: the raw score is 1 when every response matches its correct value, else 0
  (QTI's ``match_correct`` template);
- ``map_response``: the raw score is the sum over responses of each one's mapped value, within
  the mapping's bounds (QTI's ``map_response`` template; ``mapResponse`` of every response);
- ``sum``: the raw score is the sum of ``points`` over the responses that match (the common
  custom ``responseProcessing`` of several blanks).

``score_values`` are the distinct raw scores an answer can reach, ascending: the item's score
category is the position of its raw score there (two values: a right/wrong item, scored 0/1).

What a student sends (answer contract version 3): for an item of one response, a string (an
option's id as shown, or the text typed), a number, or a list of option ids (checkboxes); for an
item of several, an object keyed by response id. Options are shown in an order shuffled per
session, position and response (QTI ``shuffle``; ``fixed`` options keep their place), labelled
``A``, ``B``, ... as shown. Keys, mappings and tolerances never leave the server.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from .base import Message

ResponseKind = Literal["choice", "multiple_response", "inline_choice", "numeric", "text"]
Processing = Literal["match_correct", "map_response", "sum"]
ITEM_KINDS: tuple[str, ...] = ("choice", "multiple_response", "inline_choice", "numeric", "text")
OPTION_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# the most distinct scores an item may have: a category nobody reaches cannot be calibrated
MAX_SCORE_VALUES = 6
# checkbox subsets enumerated to find an item's attainable scores (2^12)
_MAX_SUBSETS = 4096


class InvalidAnswer(ValueError):
    """What was sent is not an answer to this item (names the response and why)."""


class ResponseSpec(Message):
    """One response variable of an item: what the student fills in and how it is scored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
    kind: ResponseKind
    prompt: str | None = Field(default=None, description="the interaction's prompt (sanitised HTML)")
    options: list[str] | None = Field(default=None, max_length=len(OPTION_LABELS),
                                      description="choice kinds: the options' content (sanitised HTML), as authored")
    option_ids: list[str] | None = Field(default=None, description="the options' identifiers")
    shuffle: bool = False
    fixed: list[int] = Field(default_factory=list, description="positions that keep their place when shuffled")
    min_choices: int = Field(default=0, ge=0)
    max_choices: int | None = Field(default=None, ge=0, description="checkboxes: at most this many (0/None: any)")
    # scoring (never leaves the server)
    correct: list[str] = Field(default_factory=list, description="the correct value(s): option ids, or the text "
                                                                  "or number as a string")
    mapping: dict[str, float] | None = None
    mapping_default: float = 0.0
    lower_bound: float | None = None
    upper_bound: float | None = None
    case_sensitive: bool = True
    tolerance_mode: Literal["exact", "absolute", "relative"] = "exact"
    tolerance: tuple[float, float] = (0.0, 0.0)
    points: float = 1.0

    @model_validator(mode="after")
    def _check(self) -> ResponseSpec:
        choosing = self.kind in ("choice", "multiple_response", "inline_choice")
        if choosing and (not self.options or self.option_ids is None or len(self.option_ids) != len(self.options)):
            raise ValueError(f"response {self.id}: a {self.kind} response needs options, each with an id")
        if not choosing and self.options is not None:
            raise ValueError(f"response {self.id}: a {self.kind} response has no options")
        if choosing and self.option_ids is not None:
            unknown = [v for v in [*self.correct, *(self.mapping or {})] if v not in self.option_ids]
            if unknown:
                raise ValueError(f"response {self.id}: {unknown[0]!r} is not one of its options")
        if self.kind == "numeric":
            for v in [*self.correct, *(self.mapping or {})]:
                try:
                    float(v)
                except ValueError:
                    raise ValueError(f"response {self.id}: {v!r} is not a number") from None
        if any(not 0 <= k < len(self.options or []) for k in self.fixed):
            raise ValueError(f"response {self.id}: a fixed position is not an option")
        return self

    # ------------------------------------------------------------------ display

    def display_order(self, secret: str, seq: int, item_id: str) -> list[int]:
        """The option indices in the order this session shows them at ``seq`` (fixed options in place)."""
        n = len(self.options or [])
        if not self.shuffle or n < 2:
            return list(range(n))
        digest = hashlib.sha256(f"{secret}:{seq}:{item_id}:{self.id}".encode()).digest()
        movable = [k for k in range(n) if k not in self.fixed]
        perm = np.random.default_rng(int.from_bytes(digest[:8], "big")).permutation(len(movable))
        shuffled = iter([movable[int(p)] for p in perm])
        return [k if k in self.fixed else next(shuffled) for k in range(n)]

    def shown(self, secret: str, seq: int, item_id: str) -> list[tuple[str, str]]:
        """``(label, content)`` of the options as shown."""
        opts = self.options or []
        return [(OPTION_LABELS[pos], opts[k]) for pos, k in enumerate(self.display_order(secret, seq, item_id))]

    # ------------------------------------------------------------------ scoring

    def value_of(self, sent: object, secret: str, seq: int, item_id: str) -> str | float | frozenset[str]:
        """What the student sent, in the bank's terms: an option id, a set of them, a number or a
        text (:class:`InvalidAnswer` when it cannot be an answer to this response)."""
        if self.kind in ("choice", "inline_choice", "multiple_response"):
            order = self.display_order(secret, seq, item_id)
            labels = OPTION_LABELS[: len(order)]
            assert self.option_ids is not None
            raw = sent if isinstance(sent, list) else [sent] if self.kind != "multiple_response" else None
            if raw is None:
                raise InvalidAnswer(f"response {self.id}: send a list of option ids (checkboxes), got {sent!r}")
            picked = [p for p in raw if isinstance(p, str) and len(p) == 1 and p in labels]
            if len(picked) != len(raw):
                raise InvalidAnswer(f"response {self.id}: {sent!r} is not among the options {', '.join(labels)}")
            if len(set(picked)) != len(picked):
                raise InvalidAnswer(f"response {self.id}: an option is chosen twice")
            if self.kind != "multiple_response":
                if len(picked) != 1:
                    raise InvalidAnswer(f"response {self.id}: choose one option")
                return self.option_ids[order[labels.index(picked[0])]]
            if self.max_choices and len(picked) > self.max_choices:
                raise InvalidAnswer(f"response {self.id}: at most {self.max_choices} options")
            return frozenset(self.option_ids[order[labels.index(p)]] for p in picked)
        if self.kind == "numeric":
            if isinstance(sent, bool) or not isinstance(sent, int | float) or not math.isfinite(sent):
                raise InvalidAnswer(f"response {self.id}: {sent!r} is not a number")
            return float(sent)
        if not isinstance(sent, str) or len(sent) > 1000:
            raise InvalidAnswer(f"response {self.id}: send the text typed (a string of at most 1,000 characters)")
        return sent.strip()

    def matches(self, value: str | float | frozenset[str]) -> bool:
        """Whether ``value`` is the correct response (QTI ``match``; ``equal`` with its tolerance
        for a number; a text compared case-insensitively when the response says so)."""
        if isinstance(value, frozenset):
            return value == frozenset(self.correct)
        if self.kind == "numeric":
            return any(_equal(float(value), float(c), self.tolerance_mode, self.tolerance) for c in self.correct)
        if self.kind == "text" and not self.case_sensitive:
            return str(value).casefold() in {c.casefold() for c in self.correct}
        return str(value) in self.correct

    def mapped(self, value: str | float | frozenset[str]) -> float:
        """QTI ``mapResponse``: the mapped value (each distinct chosen option's, summed, for
        checkboxes; the default for what the mapping does not name), within the bounds."""
        mapping = self.mapping or {}
        if isinstance(value, frozenset):
            total = sum(mapping.get(v, self.mapping_default) for v in value)
        elif self.kind == "numeric":
            total = next((s for k, s in mapping.items() if float(k) == float(value)), self.mapping_default)
        elif self.kind == "text" and not self.case_sensitive:
            total = next((s for k, s in mapping.items() if k.casefold() == str(value).casefold()),
                         self.mapping_default)
        else:
            total = mapping.get(str(value), self.mapping_default)
        if self.lower_bound is not None:
            total = max(total, self.lower_bound)
        if self.upper_bound is not None:
            total = min(total, self.upper_bound)
        return float(total)

    def examples(self) -> list[str | float | frozenset[str]]:
        """Values that together reach every outcome of this response (every option or subset
        of checkboxes; the correct and mapped values and one that is none of them)."""
        if self.kind in ("choice", "inline_choice"):
            return list(self.option_ids or [])
        if self.kind == "multiple_response":
            ids = self.option_ids or []
            top = self.max_choices or len(ids)
            sizes = range(max(1, self.min_choices), top + 1)
            subsets = itertools.chain.from_iterable(itertools.combinations(ids, k) for k in sizes)
            return [frozenset(s) for s in itertools.islice(subsets, _MAX_SUBSETS)]
        known: list[str] = list(dict.fromkeys([*self.correct, *(self.mapping or {})]))
        if self.kind == "numeric":
            return [*(float(v) for v in known), max([float(v) for v in known] or [0.0]) + 1e6]
        return [*known, "\u2400none of these\u2400"]

    def to_sent(self, value: str | float | frozenset[str], shown: Sequence[tuple[str, str]]) -> object:
        """What a tablet that shows the options as ``shown`` (``(label, content)``) sends for
        ``value``, recognising options by their content as a student would (the inverse of
        :meth:`value_of`; simulations and tests)."""
        if self.kind in ("choice", "inline_choice", "multiple_response"):
            assert self.option_ids is not None and self.options is not None
            label = {content: lab for lab, content in shown}
            content_of = dict(zip(self.option_ids, self.options, strict=True))
            if isinstance(value, frozenset):
                return sorted(label[content_of[v]] for v in value)
            return label[content_of[str(value)]]
        return value


def _equal(x: float, y: float, mode: str, tolerance: tuple[float, float]) -> bool:
    """QTI ``equal``: exact; absolute, y - t0 <= x <= y + t1; relative, y (1 - t0/100) <= x <= y (1 + t1/100)."""
    t0, t1 = tolerance
    if mode == "absolute":
        return y - t0 - 1e-12 <= x <= y + t1 + 1e-12
    if mode == "relative":
        lo, hi = sorted((y * (1 - t0 / 100), y * (1 + t1 / 100)))
        return lo - 1e-12 <= x <= hi + 1e-12
    return x == y


def raw_score(responses: Sequence[ResponseSpec], processing: Processing,
              values: Mapping[str, str | float | frozenset[str]]) -> float:
    """The item's raw score for the values of its responses (module docstring)."""
    if processing == "match_correct":
        return float(all(r.matches(values[r.id]) for r in responses))
    if processing == "sum":
        return float(sum(r.points for r in responses if r.matches(values[r.id])))
    return float(sum(r.mapped(values[r.id]) for r in responses))


def attainable_scores(responses: Sequence[ResponseSpec], processing: Processing) -> dict[float, dict[str, object]]:
    """Every raw score an answer can reach, each with one set of response values that reaches it,
    ascending (by enumeration of each response's outcomes: :meth:`ResponseSpec.examples`)."""
    reach: dict[float, dict[str, object]] = {0.0: {}} if processing != "map_response" else {}
    if processing == "match_correct":
        wrong: dict[str, object] = {}
        right: dict[str, object] = {}
        for r in responses:
            ex = r.examples()
            right[r.id] = next((v for v in ex if r.matches(v)), None)
            wrong[r.id] = next((v for v in ex if not r.matches(v)), ex[0])
        out: dict[float, dict[str, object]] = {0.0: wrong}
        if all(v is not None for v in right.values()):
            out[1.0] = right
        return out
    for r in responses:
        outcomes: dict[float, str | float | frozenset[str]] = {}
        for v in r.examples():
            s = (r.points if r.matches(v) else 0.0) if processing == "sum" else r.mapped(v)
            outcomes.setdefault(round(s, 9), v)
        if not reach:
            reach = {s: {r.id: v} for s, v in outcomes.items()}
            continue
        nxt: dict[float, dict[str, object]] = {}
        for total, values in reach.items():
            for s, v in outcomes.items():
                nxt.setdefault(round(total + s, 9), {**values, r.id: v})
        reach = nxt
    return dict(sorted(reach.items()))
