"""Generated banks in the documented file format, for demos, tests and simulation studies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from ..irt.datagen import generate_parameters
from ..irt.model import D_LOGISTIC, Model
from .bank import Item, ItemBank
from .content import arithmetic_item


def generate_bank(
    n_items: int,
    model: Model = "3PL",
    seed: int = 0,
    bank_id: str = "demo",
    version: int = 1,
    pretest: int = 0,
    content_areas: list[str] | None = None,
    with_content: bool = True,
    scale: float = D_LOGISTIC,
    numeric_every: int = 5,
) -> ItemBank:
    """``n_items`` operational items plus ``pretest`` pretest items, content areas cycled. With
    content, every ``numeric_every``-th item is numeric entry (the student types the answer),
    the others multiple choice (0: none numeric)."""
    total = n_items + pretest
    params = generate_parameters(total, model, seed, scale)
    rng = np.random.default_rng(seed + 7919)
    areas = content_areas or [""]
    items = []
    for j in range(total):
        stem, options, key = arithmetic_item(float(params.b[j]), rng) if with_content else (None, None, None)
        answer_value = None
        if options is not None and key is not None and numeric_every and j % numeric_every == numeric_every - 1:
            answer_value, options, key = float(options[key]), None, None
        items.append(Item(
            item_id=f"{'p' if j >= n_items else 'i'}{j:05d}",
            a=round(float(params.a[j]), 4), b=round(float(params.b[j]), 4),
            c=round(float(params.c[j]), 4), d=round(float(params.d[j]), 4),
            status="pretest" if j >= n_items else "operational",
            content_area=areas[j % len(areas)],
            stem=stem, options=options, key=key, answer_value=answer_value,
        ))
    return ItemBank(bank_id=bank_id, version=version, model=model, scale=scale, items=items)


def provisional_bank(truth: ItemBank) -> ItemBank:
    """``truth`` as published before any calibration: pretest items at a = 1, b = 0 (a
    partial-credit one's thresholds evenly from -1 to 1): the values a calibration must move
    them from."""
    def provisional(it: Item) -> Item:
        if it.model is None:
            return it.model_copy(update={"a": 1.0, "b": 0.0})
        return it.model_copy(update={"a": 1.0, "b": [float(x) for x in np.linspace(-1.0, 1.0, len(it.thresholds))],
                                     "se_a": None, "se_b": None})

    return truth.model_copy(update={"items": [provisional(it) if it.status == "pretest" else it
                                              for it in truth.items]})


def simulated_history(bank: ItemBank, persons: int, max_items: int = 15,
                      pretest_positions: tuple[int, ...] = (3, 7, 11), seed: int = 0,
                      start: datetime | None = None, days: int = 3) -> dict[str, bytes]:
    """The answer history of ``persons`` simulated CAT sessions on ``bank`` (its parameters are
    the truth), as Firehose would land it: NDJSON objects under ``history/dt=YYYY-MM-DD/``,
    sessions spread over ``days`` days. For calibration tests and benchmarks."""
    from ..irt.config import CatConfig
    from ..irt.simulation import simulate
    from .history import HistoryRecord

    start = start or datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    res = simulate(bank.engine, CatConfig(max_items=max_items, se_threshold=None, pretest_positions=pretest_positions),
                   np.random.default_rng(seed).normal(size=persons), seed=seed + 1, keep_responses=True)
    assert res.responses is not None
    lines: dict[str, list[str]] = {}
    for k, (p, j, x) in enumerate(zip(*res.responses, strict=True)):
        when = start + timedelta(days=int(p) % days, seconds=k % 86_000)
        rec = HistoryRecord(record_type="answer", outcome="applied", processed_at=when, session_id=f"s{p}",
                            student_id=f"u{p}", bank_id=bank.bank_id, bank_version=bank.version,
                            item_id=bank.items[j].item_id, response=int(x), seq=k)
        lines.setdefault(f"history/dt={when:%Y-%m-%d}/part-00000.json", []).append(rec.model_dump_json())
    return {key: ("\n".join(recs) + "\n").encode() for key, recs in lines.items()}


PARTIAL_CREDIT = ("GRM", "GPCM")


def with_partial_credit(bank: ItemBank, models: list[str], seed: int = 0) -> ItemBank:
    """``bank`` with its items' models cycling through ``models`` (e.g. 3PL, GRM, GPCM): an item
    whose turn is GRM or GPCM becomes a 4-category item of that model, keeping its a, with
    thresholds around its b (GRM b - 1, b, b + 1 plus noise, sorted; GPCM steps b + N(0, 0.8^2)).
    A multiple-choice item keeps its options, and its credits follow how close each option is
    to the right answer (the right one 3, the nearest distractor 2, then 1, then 0). A
    numeric-entry item keeps its answer and earns 3 within its tolerance, 2 within 2 of the
    answer, 1 within 10 (``credit_bands``); items without content become partial-credit items
    without content (for simulation and calibration studies)."""
    unknown = [m for m in models if m not in PARTIAL_CREDIT and m != bank.model]
    if not models or unknown:
        raise ValueError(f"models must name the bank's model ({bank.model}) or GRM/GPCM, got {models}")
    rng = np.random.default_rng(seed + 104_729)
    items = []
    for j, item in enumerate(bank.items):
        model = models[j % len(models)]
        if model not in PARTIAL_CREDIT:
            items.append(item)
            continue
        b = item.difficulty
        if model == "GRM":
            thresholds = sorted(b + np.array([-1.0, 0.0, 1.0]) + rng.normal(0.0, 0.2, 3))
        else:
            thresholds = list(b + rng.normal(0.0, 0.8, 3))
        credits = None
        if item.options is not None and item.key is not None and len(item.options) == 4:
            right = float(item.options[item.key])
            distance = [abs(float(o) - right) for o in item.options]
            credits = [0] * 4
            for rank, k in enumerate(np.argsort(distance, kind="stable")):
                credits[int(k)] = 3 - rank
        numeric = item.kind == "numeric"
        items.append(Item(item_id=item.item_id, model=model, a=item.a,  # type: ignore[arg-type]
                          b=[round(float(x), 4) for x in thresholds], status=item.status,
                          content_area=item.content_area, exposure_k=item.exposure_k,
                          exposure_price=item.exposure_price,
                          stem=item.stem if credits or numeric else None,
                          options=item.options if credits else None, credits=credits,
                          answer_value=item.answer_value if numeric else None,
                          credit_bands=[10.0, 2.0, item.tolerance] if numeric else None))
    return bank.model_copy(update={"items": items})
