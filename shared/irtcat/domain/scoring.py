"""Scoring on the server: what a student chose, turned into a score by the bank's key.

The tablet never sees a key. It shows a multiple-choice item's options in an order shuffled
per session and position, labelled ``A``, ``B``, ... in the order shown, and sends the label
of the option chosen; a numeric-entry item it shows with an input and sends the number
entered. The shuffle is seeded by the session's secret (kept server-side), so neither the
labels nor the order carry the key, and the same label means different options to two
students. The server recovers the bank's option from the label and scores it: 1 for the key,
0 otherwise; a numeric entry scores 1 within the item's tolerance. A partial-credit item's
option earns the category its ``credits`` give it (0..m); a partial-credit numeric entry earns
the highest category k whose band ``credit_bands[k-1]`` it falls within (0 outside them all).
An item scored by its own rules (``responses``: checkboxes, a select in a sentence, a typed
word, several blanks) earns the position of its raw score among its ``score_values``
(:mod:`irtcat.domain.responses`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .bank import OPTION_IDS, Item, ItemBank
from .responses import InvalidAnswer, attainable_scores, raw_score


class InvalidChoice(ValueError):
    """A choice that is not an answer to this item: not one of its options, or not a number."""


def _score_responses(item: Item, choice: object, secret: str, seq: int) -> Scored:
    assert item.responses is not None and item.processing is not None and item.score_values is not None
    responses = item.responses
    if len(responses) == 1:
        sent = {responses[0].id: choice}
    elif isinstance(choice, dict):
        missing = [r.id for r in responses if r.id not in choice]
        extra = [k for k in choice if k not in {r.id for r in responses}]
        if missing or extra:
            raise InvalidChoice(f"item {item.item_id}: send one value per response "
                                f"({', '.join(r.id for r in responses)})")
        sent = choice
    else:
        raise InvalidChoice(f"item {item.item_id} has {len(responses)} responses: send an object keyed by "
                            f"{', '.join(r.id for r in responses)}")
    try:
        values = {r.id: r.value_of(sent[r.id], secret, seq, item.item_id) for r in responses}
    except InvalidAnswer as exc:
        raise InvalidChoice(str(exc)) from None
    raw = raw_score(responses, item.processing, values)
    category = min(range(len(item.score_values)), key=lambda k: abs(item.score_values[k] - raw))  # type: ignore[index]
    return Scored(category, None)


@dataclass(frozen=True)
class Scored:
    """A scored choice: the score (0/1, or a partial-credit item's category), and for a
    multiple-choice item the bank's option index (what a distractor analysis counts)."""

    score: int
    option: int | None


def display_order(secret: str, seq: int, item: Item) -> list[int]:
    """The bank indices of ``item``'s options in the order this session shows them at ``seq``."""
    if item.options is None:
        return []
    digest = hashlib.sha256(f"{secret}:{seq}:{item.item_id}".encode()).digest()
    order = np.random.default_rng(int.from_bytes(digest[:8], "big")).permutation(len(item.options))
    return [int(k) for k in order]


def shown_options(secret: str, seq: int, item: Item) -> list[tuple[str, str]]:
    """``(id, text)`` of the options in the order shown: what the tablet receives."""
    assert item.options is not None
    return [(OPTION_IDS[pos], item.options[k]) for pos, k in enumerate(display_order(secret, seq, item))]


def score_choice(item: Item, choice: object, secret: str, seq: int) -> Scored:
    """Score what the student chose at ``seq`` against the bank's key (or answer value).

    Raises :class:`InvalidChoice` with the reason when the choice cannot be an answer to the
    item, and ``ValueError`` when the item has no scoring rule.
    """
    if item.responses is not None:
        return _score_responses(item, choice, secret, seq)
    kind = item.kind
    if kind == "choice":
        assert item.options is not None
        labels = OPTION_IDS[: len(item.options)]
        if not isinstance(choice, str) or len(choice) != 1 or choice not in labels:
            raise InvalidChoice(f"choice {choice!r} is not one of the options {', '.join(labels)}")
        option = display_order(secret, seq, item)[labels.index(choice)]
        if item.credits is not None:
            return Scored(item.credits[option], option)
        return Scored(int(option == item.key), option)
    if kind == "numeric":
        assert item.answer_value is not None
        if isinstance(choice, bool) or not isinstance(choice, int | float) or not math.isfinite(choice):
            raise InvalidChoice(f"choice {choice!r} is not a number (item {item.item_id} is numeric entry)")
        distance = abs(float(choice) - item.answer_value)
        if item.credit_bands is not None:
            return Scored(sum(distance <= band + 1e-12 for band in item.credit_bands), None)
        return Scored(int(distance <= item.tolerance + 1e-12), None)
    raise ValueError(f"item {item.item_id} has no scoring rule (options with a key, or an answer value)")


def simulated_response_choice(item: Item, category: int, shown: Mapping[str, Sequence[tuple[str, str]]]) -> object:
    """What a tablet that shows each response's options as ``shown`` (response id -> ``(label,
    content)``) sends for an item scored by its responses, so that it earns ``category`` (one
    of the answers that reach that score). For simulations and tests only."""
    assert item.responses is not None and item.processing is not None and item.score_values is not None
    reach = attainable_scores(item.responses, item.processing)
    values = reach[round(item.score_values[category], 9)]
    sent = {r.id: r.to_sent(values[r.id], shown.get(r.id, ())) for r in item.responses}  # type: ignore[arg-type]
    return sent[item.responses[0].id] if len(item.responses) == 1 else sent


def simulated_choice(item: Item, shown: list[tuple[str, str]] | None, correct: bool,
                     rng: np.random.Generator) -> str | float:
    """What a simulated student who answers ``correct``-ly sends, given the options as the
    tablet shows them (``(id, text)``): the id of the key's text, or of a wrong one (a numeric
    item: the value, or a miss). For simulations and tests only: it reads the bank's key, as a
    student who knows the answer would recognise it by its text."""
    if item.kind == "choice":
        assert item.options is not None and item.key is not None and shown
        right = item.options[item.key]
        wrong = [oid for oid, text in shown if text != right]
        if correct:
            return next(oid for oid, text in shown if text == right)
        return wrong[int(rng.integers(len(wrong)))]
    if item.kind == "numeric":
        assert item.answer_value is not None
        miss = item.tolerance + int(rng.integers(1, 10))
        return item.answer_value + (0 if correct else (miss if rng.random() < 0.5 else -miss))
    raise ValueError(f"item {item.item_id} has no scoring rule")


def simulated_category_choice(item: Item, shown: list[tuple[str, str]], category: int,
                              rng: np.random.Generator) -> str | float:
    """What a simulated student whose answer earns ``category`` on a partial-credit item sends:
    the id of an option (as shown) that earns it, or a number inside that category's band
    (between the band and the next narrower one). For simulations and tests only."""
    if item.kind == "numeric":
        assert item.answer_value is not None and item.credit_bands is not None
        bands = [*item.credit_bands, -1.0]
        m = len(item.credit_bands)
        if category >= m:
            distance = 0.0
        elif category == 0:
            distance = bands[0] + float(rng.integers(1, 10))
        else:
            distance = (bands[category - 1] + max(bands[category], 0.0)) / 2
            distance = distance if distance > bands[category] else bands[category - 1]
        return item.answer_value + (distance if rng.random() < 0.5 else -distance)
    assert item.options is not None and item.credits is not None
    texts = [item.options[k] for k, c in enumerate(item.credits) if c == category]
    ids = [oid for oid, text in shown if text in texts]
    if not ids:
        raise ValueError(f"item {item.item_id}: no option earns category {category}")
    return ids[int(rng.integers(len(ids)))]


def simulated_answer(bank: ItemBank, item_id: str, true_theta: float, shown: list[tuple[str, str]] | None,
                     rng: np.random.Generator, shown_by_response: Mapping[str, Sequence[tuple[str, str]]] | None = None
                     ) -> object:
    """What a simulated student of ability ``true_theta`` sends for ``item_id``: a response drawn
    from the item's model (right/wrong, or a partial-credit category), turned into the choice
    that earns it (an item scored by its responses: from ``shown_by_response``, each
    response's options as shown). For simulations and tests only."""
    from ..irt.model import prob
    from ..irt.polytomous import draw_responses

    engine = bank.engine
    j = engine.index[item_id]
    item = bank.items[j]
    if item.model is not None and engine.poly is not None:
        k = int(engine.poly_positions(np.array(j))[0])
        category = int(draw_responses(np.array([true_theta]), engine.poly.subset([k]), rng)[0])
        if item.responses is not None:
            return simulated_response_choice(item, category, shown_by_response or {})
        return simulated_category_choice(item, shown or [], category, rng)
    correct = bool(rng.random() < float(prob(true_theta, engine.params.subset([j]))[0]))
    if item.responses is not None:
        return simulated_response_choice(item, int(correct), shown_by_response or {})
    return simulated_choice(item, shown, correct, rng)
