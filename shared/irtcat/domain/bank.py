"""The item bank file and record: ``{"bank_id", "version", "model", "items": [...]}``."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from ..irt.model import D_LOGISTIC, ItemParameters, Model
from ..irt.polytomous import PolytomousItems
from ..irt.state import STATUS_CODES, Bank
from .base import Message, first_error
from .responses import MAX_SCORE_VALUES, Processing, ResponseKind, ResponseSpec, attainable_scores

ItemStatus = Literal["operational", "pretest", "retired"]
PartialCreditModel = Literal["GRM", "GPCM"]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


# the ids a tablet sends for the options in the order it shows them (A = first shown)
OPTION_IDS = "ABCDEFGHIJ"
# the media a bank may carry (pictures and sounds), by extension: what the tablet is served as
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp", ".svg": "image/svg+xml", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
               ".wav": "audio/wav", ".m4a": "audio/mp4"}


def media_type(path: str) -> str:
    """The content type of a bank media file (ValueError naming it when it is not one)."""
    ext = Path(path).suffix.lower()
    if ext not in MEDIA_TYPES:
        raise ValueError(f"media {path}: a {ext or 'file without extension'} is not a picture or a sound "
                         f"({', '.join(sorted(MEDIA_TYPES))})")
    return MEDIA_TYPES[ext]


class Item(Message):
    """One item: IRT parameters, status, content area and what the tablet displays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: str = Field(min_length=1, max_length=128)
    model: PartialCreditModel | None = Field(
        default=None, description="a partial-credit item's model (b is then its list of thresholds); "
                                  "None: the bank's model")
    a: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    b: FiniteFloat | list[FiniteFloat] = Field(default=0.0,
                                   description="difficulty; a partial-credit item: thresholds of categories 0..len(b)")
    c: float = Field(default=0.0, ge=0, lt=1, allow_inf_nan=False)
    d: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)
    status: ItemStatus = "operational"
    content_area: str = ""
    # blueprint attributes (domain/blueprint.py): string values, e.g. {"dok": "2", "passage": "p07"}
    attributes: dict[str, str] = Field(default_factory=dict)
    expected_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                           description="typical working time (a blueprint's sum rule)")
    mean_log_seconds: float | None = Field(default=None, allow_inf_nan=False,
                                           description="mean log response time (seconds) of its answers, written "
                                                       "by calibration; sets its rapid-guess threshold")
    stem: str | None = None
    options: list[str] | None = None
    key: int | None = Field(default=None, ge=0, description="index of the correct option (never leaves the server)")
    answer_value: float | None = Field(default=None, allow_inf_nan=False,
                                       description="numeric-entry item: the correct value (never leaves the server)")
    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False,
                             description="numeric-entry item: |entered - answer_value| <= tolerance scores 1")
    credits: list[int] | None = Field(
        default=None, description="partial-credit multiple choice: the category each option earns (never leaves "
                                  "the server)")
    credit_bands: list[FiniteFloat] | None = Field(
        default=None, description="partial-credit numeric entry: category k is earned within credit_bands[k-1] of "
                                  "answer_value, widest first (never leaves the server)")
    # an imported item scored by its own rules (domain/responses.py): its response variables, how
    # they add up, and the raw scores they can reach (category = position; never leave the server
    # but for each response's kind, prompt and options)
    responses: list[ResponseSpec] | None = Field(default=None, min_length=1, max_length=20)
    processing: Processing | None = None
    score_values: list[float] | None = None
    # where it came from: its title, its source file (a QTI path, a sheet's file:row) and the
    # package's metadata (LOM subject, QTI 3 catalogInfo, ...)
    title: str | None = Field(default=None, max_length=500)
    source: str | None = Field(default=None, max_length=1000)
    metadata: dict[str, str] | None = None
    exposure_k: float = Field(default=1.0, gt=0, le=1, description="Sympson-Hetter parameter")
    exposure_price: float = Field(default=0.0, ge=0, allow_inf_nan=False,
                                  description="allocation price: max-info under exposure control ranks this item "
                                              "by its information less this")
    # written by calibration
    se_a: float | None = Field(default=None, ge=0)
    se_b: float | list[float] | None = Field(default=None)
    se_c: float | None = Field(default=None, ge=0)
    n_responses: int | None = Field(default=None, ge=0)
    rmsd: float | None = Field(default=None, ge=0)
    calibration_note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Item:
        if self.model is None and isinstance(self.b, list):
            raise ValueError(f"item {self.item_id}: a list of thresholds b needs \"model\": \"GRM\" or \"GPCM\"")
        if self.model is not None:
            if not isinstance(self.b, list) or not self.b:
                raise ValueError(f"item {self.item_id}: a {self.model} item needs b as a list of 1 or more thresholds")
            if self.model == "GRM" and any(y <= x for x, y in pairwise(self.b)):
                raise ValueError(f"item {self.item_id}: graded response thresholds must increase, got {self.b}")
            if self.c != 0.0 or self.d != 1.0:
                raise ValueError(f"item {self.item_id}: a partial-credit item has no c or d")
            if self.key is not None or (self.answer_value is not None and self.credit_bands is None):
                raise ValueError(f"item {self.item_id}: a partial-credit item is scored by credits (options) or "
                                 "credit_bands (numeric entry), not a key")
        if self.credits is not None:
            m = len(self.thresholds)
            if self.model is None or self.options is None or len(self.credits) != len(self.options):
                raise ValueError(f"item {self.item_id}: credits need a partial-credit model and one per option")
            if min(self.credits) < 0 or max(self.credits) != m:
                raise ValueError(f"item {self.item_id}: credits must be categories 0..{m} with {m} earned by an option")
        if self.credit_bands is not None:
            m = len(self.thresholds)
            bands = self.credit_bands
            if self.model is None or self.answer_value is None or len(bands) != m:
                raise ValueError(f"item {self.item_id}: credit_bands need a partial-credit model, an answer_value "
                                 f"and one band per category 1..{m}")
            if min(bands) < 0 or any(y >= x for x, y in pairwise(bands)):
                raise ValueError(f"item {self.item_id}: credit_bands must be distances >= 0, widest first and "
                                 f"strictly narrowing (category {m} the closest answers), got {bands}")
        se_b = self.se_b if isinstance(self.se_b, list) else [self.se_b] if self.se_b is not None else []
        if any(x < 0 for x in se_b):
            raise ValueError(f"item {self.item_id}: se_b must be >= 0")
        if self.d <= self.c:
            raise ValueError(f"item {self.item_id}: d must be greater than c")
        if self.key is not None and (self.options is None or self.key >= len(self.options)):
            raise ValueError(f"item {self.item_id}: key must index one of the options")
        if self.answer_value is not None and (self.options is not None or self.key is not None):
            raise ValueError(f"item {self.item_id}: a numeric-entry item (answer_value) has no options or key")
        if self.options is not None and len(self.options) > len(OPTION_IDS):
            raise ValueError(f"item {self.item_id}: at most {len(OPTION_IDS)} options")
        if self.responses is not None:
            self._check_responses(self.responses)
        return self

    def _check_responses(self, responses: list[ResponseSpec]) -> None:
        if any(x is not None for x in (self.options, self.key, self.answer_value, self.credits, self.credit_bands)):
            raise ValueError(f"item {self.item_id}: an item with responses is scored by them, not by options/key/"
                             "answer_value/credits")
        if len({r.id for r in responses}) != len(responses):
            raise ValueError(f"item {self.item_id}: two responses share an id")
        if self.processing is None or self.score_values is None:
            raise ValueError(f"item {self.item_id}: an item with responses needs processing and score_values")
        values = self.score_values
        if len(values) < 2 or len(values) > MAX_SCORE_VALUES or any(y <= x for x, y in pairwise(values)):
            raise ValueError(f"item {self.item_id}: score_values must be 2..{MAX_SCORE_VALUES} increasing scores")
        reachable = attainable_scores(responses, self.processing)
        if sorted(reachable) != [round(v, 9) for v in values]:
            raise ValueError(f"item {self.item_id}: score_values {values} are not the scores its responses reach "
                             f"({sorted(reachable)})")
        categories = len(values) - 1
        if categories == 1 and self.model is not None:
            raise ValueError(f"item {self.item_id}: two scores make a right/wrong item (no partial-credit model)")
        if categories > 1 and (self.model is None or len(self.thresholds) != categories):
            raise ValueError(f"item {self.item_id}: {len(values)} scores need a partial-credit model with "
                             f"{categories} thresholds")

    @property
    def thresholds(self) -> list[float]:
        """A partial-credit item's thresholds (empty for a right/wrong item)."""
        return list(self.b) if isinstance(self.b, list) else []

    @property
    def difficulty(self) -> float:
        """b of a right/wrong item (ValueError naming the item for a partial-credit one)."""
        if isinstance(self.b, list):
            raise ValueError(f"item {self.item_id} is a {self.model} item: it has thresholds, not one b")
        return self.b

    @property
    def kind(self) -> ResponseKind | None:
        """How the tablet answers it, in the bank's one vocabulary (``choice``,
        ``multiple_response``, ``inline_choice``, ``numeric``, ``text``; an item of several
        responses: its first's); None: no scoring rule."""
        if self.responses:
            return self.responses[0].kind
        if self.options is not None and (self.key is not None or self.credits is not None):
            return "choice"
        if self.answer_value is not None:
            return "numeric"
        return None


class CalibrationInfo(Message):
    """How a calibrated bank version was estimated: what a psychometrician needs to reproduce it."""

    model: str
    priors: dict[str, Any]
    se_method: str
    cycles: int = Field(ge=0)
    converged: bool
    n_responses: int = Field(ge=0)
    n_persons: int = Field(ge=0)
    log_likelihood: float


class ExposureControl(Message):
    """Which policy a bank's exposure parameters were computed for: its digest (the policy's
    choices that shape exposure, :func:`irtcat.domain.exposure.exposure_digest`), the cap and
    the method. Item defaults cannot tell "no control" from "none needed"; this can."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    policy_digest: str
    max_exposure: float
    selection: str
    method: str
    policy: dict[str, Any] | None = Field(default=None, description="the policy's choices that shape exposure "
                                          "(what the calibration job recomputes it for after a promotion)")


class ItemBank(Message):
    """A versioned item bank (the documented JSON file format, ``format_version`` 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: Literal[1] = 1
    bank_id: str = Field(min_length=1, max_length=128)
    version: int = Field(ge=1)
    model: Model | PartialCreditModel = Field(
        default="3PL", description="the right/wrong items' model; a bank calibrated as GRM or GPCM names that")
    scale: float = Field(default=D_LOGISTIC, gt=0)
    # a session stores its items as positions in the bank, two bytes each (domain/stored.py)
    items: list[Item] = Field(min_length=1, max_length=65_535)
    calibration: CalibrationInfo | None = Field(default=None, description="how this version was calibrated")
    # shared stimuli (reading passages, a figure several items refer to): id -> sanitised HTML,
    # shown with every item whose ``passage`` attribute names it
    stimuli: dict[str, str] = Field(default_factory=dict)
    # the policy the items' exposure parameters were computed for (None: never computed)
    exposure_control: ExposureControl | None = None

    @model_validator(mode="after")
    def _unique(self) -> ItemBank:
        ids = [it.item_id for it in self.items]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise ValueError(f"duplicate item_id(s): {', '.join(dup)}")
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> ItemBank:
        """A copy; the cached :attr:`engine` is not carried over (the copy's items may differ)."""
        out = super().model_copy(update=update, deep=deep)
        out.__dict__.pop("engine", None)
        out.__dict__.pop("median_log_seconds", None)
        return out

    @cached_property
    def median_log_seconds(self) -> float | None:
        """The median of the items' ``mean_log_seconds`` (None: no item has one): the typical
        time of an item without its own (domain/effort.py)."""
        known = sorted(it.mean_log_seconds for it in self.items if it.mean_log_seconds is not None)
        if not known:
            return None
        mid = len(known) // 2
        return known[mid] if len(known) % 2 else (known[mid - 1] + known[mid]) / 2

    @cached_property
    def engine(self) -> Bank:
        """The arrays the engine works on (built once per bank object); partial-credit items go
        to the bank's ``poly`` part (:class:`~irtcat.irt.state.Bank`)."""
        its = self.items
        poly_index = [j for j, i in enumerate(its) if i.model is not None]
        params = ItemParameters.from_arrays(
            a=[i.a for i in its], b=[0.0 if i.model is not None else i.difficulty for i in its],
            c=[i.c for i in its], d=[i.d for i in its], scale=self.scale,
        )
        poly = None
        if poly_index:
            chosen = [its[j] for j in poly_index]
            poly = PolytomousItems.build([str(i.model) for i in chosen], [i.a for i in chosen],
                                         [i.thresholds for i in chosen], scale=self.scale)
        return Bank(
            params,
            status=np.array([STATUS_CODES[i.status] for i in its], dtype=np.int8),
            content=[i.content_area for i in its],
            exposure_k=np.array([i.exposure_k for i in its]),
            item_ids=[i.item_id for i in its],
            poly=poly,
            poly_index=np.array(poly_index, dtype=np.int64),
            exposure_price=np.array([i.exposure_price for i in its]),
        )

    def item(self, item_id: str) -> Item:
        """The item with that id (KeyError when absent)."""
        return self.items[self.engine.index[item_id]]

    @classmethod
    def load(cls, path: str | Path) -> ItemBank:
        """Read and validate a bank JSON file; ValueError with the reason when it is not one."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read bank {path}: {exc.strerror}") from exc
        try:
            return cls.model_validate_json(text)
        except ValueError as exc:
            raise ValueError(f"invalid bank {path}: {first_error(exc)}") from exc

    def dump(self, path: str | Path) -> None:
        """Write the bank as JSON."""
        Path(path).write_text(self.model_dump_json(indent=1, exclude_none=True), encoding="utf-8")
