"""Generated banks in the documented file format, for demos, tests and simulation studies."""

from __future__ import annotations

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
) -> ItemBank:
    """``n_items`` operational items plus ``pretest`` pretest items, content areas cycled."""
    total = n_items + pretest
    params = generate_parameters(total, model, seed, scale)
    rng = np.random.default_rng(seed + 7919)
    areas = content_areas or [""]
    items = []
    for j in range(total):
        stem, options, key = arithmetic_item(float(params.b[j]), rng) if with_content else (None, None, None)
        items.append(Item(
            item_id=f"{'p' if j >= n_items else 'i'}{j:05d}",
            a=round(float(params.a[j]), 4), b=round(float(params.b[j]), 4),
            c=round(float(params.c[j]), 4), d=round(float(params.d[j]), 4),
            status="pretest" if j >= n_items else "operational",
            content_area=areas[j % len(areas)],
            stem=stem, options=options, key=key,
        ))
    return ItemBank(bank_id=bank_id, version=version, model=model, scale=scale, items=items)
