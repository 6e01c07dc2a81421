"""Synthetic item banks and response data with fixed seeds.

Default generating distributions (common in CAT simulation studies, e.g. Kingsbury & Zara 1989;
Chang & Ying 1999): a ~ N(1.2, 0.25) truncated to [0.4, 2.5], b ~ N(0, 1) truncated to
[-3, 3], c ~ Beta(5, 17) (mean ~0.23) for the 3PL, d ~ U(0.95, 1) for the 4PL.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .model import D_LOGISTIC, FloatArray, ItemParameters, Model, prob

# Named generating distributions for calibration studies: what a default is chosen on must not
# be only the distribution it was tuned with.
Slopes = Literal["normal", "lognormal", "uniform"]
Guessing = Literal["beta", "uniform"]


def generate_parameters(
    n_items: int, model: Model = "3PL", seed: int = 0, scale: float = D_LOGISTIC,
    slopes: Slopes = "normal", guessing: Guessing = "beta",
) -> ItemParameters:
    """Item parameters drawn from the distributions above for the given model.

    ``slopes``: "normal" (the default above), "lognormal" (a ~ LogNormal(0, 0.25)) or
    "uniform" (a ~ U(0.5, 2.5)); ``guessing``: "beta" (c ~ Beta(5, 17)) or "uniform"
    (c ~ U(0, 0.25)). The draws for b do not depend on these choices.
    """
    if n_items < 1:
        raise ValueError("a bank needs at least one item")
    rng = np.random.default_rng(seed)
    a = np.clip(rng.normal(1.2, 0.25, n_items), 0.4, 2.5)
    b = np.clip(rng.normal(0.0, 1.0, n_items), -3.0, 3.0)
    c = np.clip(rng.beta(5, 17, n_items), 0.0, 0.35)
    other = np.random.default_rng([seed, 1])
    if slopes == "lognormal":
        a = other.lognormal(0.0, 0.25, n_items)
    elif slopes == "uniform":
        a = other.uniform(0.5, 2.5, n_items)
    elif slopes != "normal":
        raise ValueError(f"unknown slope distribution {slopes!r}")
    if guessing == "uniform":
        c = other.uniform(0.0, 0.25, n_items)
    elif guessing != "beta":
        raise ValueError(f"unknown guessing distribution {guessing!r}")
    d = rng.uniform(0.95, 1.0, n_items)
    if model == "1PL":
        a = np.ones(n_items)
    if model in ("1PL", "2PL"):
        c = np.zeros(n_items)
    if model != "4PL":
        d = np.ones(n_items)
    return ItemParameters.from_arrays(a=a, b=b, c=c, d=d, scale=scale)


def generate_responses(
    params: ItemParameters,
    thetas: FloatArray,
    seed: int = 0,
    items_per_person: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Responses as long-format arrays ``(person_index, item_index, response)``.

    With ``items_per_person`` each person answers that many items drawn at random (missing
    completely at random); otherwise every item.
    """
    rng = np.random.default_rng(seed)
    thetas = np.asarray(thetas, dtype=np.float64)
    n, m = thetas.size, len(params)
    if items_per_person is None or items_per_person >= m:
        person = np.repeat(np.arange(n), m)
        item = np.tile(np.arange(m), n)
    else:
        if items_per_person < 1:
            raise ValueError("items_per_person must be >= 1")
        item = np.argsort(rng.random((n, m)), axis=1)[:, :items_per_person].ravel()
        person = np.repeat(np.arange(n), items_per_person)
    p = prob(thetas[person], params.subset(item))
    response = (rng.random(p.shape) < p).astype(np.int64)
    return person, item, response


def planted_dif(n: int, k: int, seed: int, focal_mean: float = -0.5, uniform: int = 3, shift: float = 1.2,
                slope_ratio: float = 0.3) -> tuple[np.ndarray, np.ndarray, FloatArray, FloatArray, FloatArray]:
    """A DIF study's data: ``n`` reference (N(0, 1)) and ``n`` focal (N(focal_mean, 1)) examinees
    on ``k`` 2PL items (a ~ U(0.8, 2), b ~ N(0, 1), D = 1). Items 0..uniform-1 are harder for
    the focal group by ``shift`` in log-odds at every ability (uniform DIF: MH delta near
    -2.35 shift); item ``uniform`` has the focal slope times ``slope_ratio`` (non-uniform DIF).
    Returns (responses, focal, a, b, theta)."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.8, 2.0, k), rng.normal(0, 1, k)
    theta = np.r_[rng.normal(0, 1, n), rng.normal(focal_mean, 1, n)]
    focal = np.r_[np.zeros(n, bool), np.ones(n, bool)]
    z = a * (theta[:, None] - b)
    z[:, :uniform] -= shift * focal[:, None]
    z[:, uniform] = np.where(focal, slope_ratio * a[uniform], a[uniform]) * (theta - b[uniform])
    x = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return x, focal, a, b, theta
